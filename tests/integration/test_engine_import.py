"""Importing the whole engine in a fresh interpreter loads no streamlit (a subprocess, so it sits
in this tier; the static import checks are tests/unit/test_layers.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = sorted((ROOT / "darts_engine").rglob("*.py"))
def test_importing_the_whole_engine_loads_no_streamlit():
    modules = ", ".join(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in ENGINE
                        if p.stem not in ("__init__", "__main__"))
    code = f"import sys, {modules}; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
