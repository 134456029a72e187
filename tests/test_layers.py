"""The two layers and their one-way imports (STYLE.md §1): darts_engine never imports streamlit;
app.py and pages/ never import torch (they reach tensors only through the engine's plain data)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = sorted((ROOT / "darts_engine").glob("*.py"))
UI = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    """Top-level package names of every import statement in the file (anywhere in it)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_engine_never_imports_streamlit(path):
    assert "streamlit" not in imported_modules(path), f"{path.name} imports streamlit"


@pytest.mark.parametrize("path", UI, ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_never_imports_torch(path):
    found = imported_modules(path) & {"torch", "torchvision"}
    assert not found, f"{path.relative_to(ROOT)} imports {found}: go through darts_engine"


def test_ui_files_exist():
    assert (ROOT / "app.py").is_file() and len(UI) >= 5  # app + launch, live, compare, runs


def test_importing_the_whole_engine_loads_no_streamlit():
    modules = ", ".join(f"darts_engine.{p.stem}" for p in ENGINE
                        if p.stem not in ("__init__", "__main__"))
    code = f"import sys, {modules}; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
