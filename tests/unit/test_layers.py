"""The two layers and their one-way imports (STYLE.md §1): darts_engine never imports streamlit;
app.py and pages/ never import torch (they reach tensors only through the engine's plain data)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = sorted((ROOT / "darts_engine").rglob("*.py"))
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


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_never_imports_streamlit(path):
    assert "streamlit" not in imported_modules(path), f"{path} imports streamlit"


@pytest.mark.parametrize("path", UI, ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_never_imports_torch(path):
    found = imported_modules(path) & {"torch", "torchvision"}
    assert not found, f"{path.relative_to(ROOT)} imports {found}: go through darts_engine"


def test_ui_files_exist():
    assert (ROOT / "app.py").is_file() and len(UI) >= 5  # app + launch, live, compare, runs



# --- inside the engine: layers from the vocabulary up to the CLI, imports only downwards --------
# A module may import from its own layer and the layers below it, never from one above; and no
# two modules import each other, directly or around a circle (type-checking imports count too).
LAYERS = (
    ("registry", "registries", "events", "config"),  # the vocabulary every layer speaks
    ("model",),      # what is searched: ops, spaces and their topology, genotypes, supernets
    ("truth",),      # NAS-Bench-201 ground truth: readers keyed by arch string
    ("train",),      # how: data, update rules, the built search, checkpoints, presets
    ("tasks",),      # for which task: data streams, losses, metrics, artifacts
    ("methods",),    # the variants: hooks around the update rule
    ("monitor",),    # the collapse monitor: indicators, probes, alerts, tracker
    ("search",),     # the loop
    ("viz",),        # figures from plain data
    ("runs",),       # the store, recorder, bundles, manager, read model
    ("cli", "__main__"),
)
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def engine_module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def engine_imports(path: Path) -> set[str]:
    """Dotted darts_engine modules (files) this file imports, relative or absolute."""
    package = engine_module(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "darts_engine":
                stem = node.module.split(".")
            else:
                continue
            for alias in node.names:
                as_module = stem + [alias.name]
                if (ROOT.joinpath(*as_module).with_suffix(".py")).is_file():
                    found.add(".".join(as_module))
                else:
                    found.add(".".join(stem))
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "darts_engine"}
    return {m for m in found if m != "darts_engine"}


def layer(module: str) -> int:
    top = module.split(".")[1]
    assert top in LAYER_OF, f"{module}: put it in a layer of tests/test_layers.py LAYERS"
    return LAYER_OF[top]


# darts_engine/__init__.py is the package's face: it imports every layer to fill the registries
IMPORTERS = [p for p in ENGINE if p.name != "__init__.py" or p.parent.name != "darts_engine"]


@pytest.mark.parametrize("path", IMPORTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_run_downwards(path):
    me = engine_module(path)
    if path.name == "__init__.py":  # a subpackage's face: its docstring, nothing imported
        assert not engine_imports(path), f"{me} imports engine modules"
        return
    upward = {m for m in engine_imports(path) if layer(m) > layer(me)}
    assert not upward, f"{me} (layer {LAYERS[layer(me)]}) imports upwards: {sorted(upward)}"


def test_engine_has_no_import_circle():
    graph = {engine_module(p): engine_imports(p) for p in IMPORTERS}
    seen: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert seen.get(nxt) != 1, "import circle: " + " -> ".join(path + [nxt])
            if nxt not in seen:
                visit(nxt, path + [nxt])
        seen[node] = 2

    for start in sorted(graph):
        if start not in seen:
            visit(start, [start])


def test_every_engine_module_has_a_layer():
    for p in IMPORTERS:
        layer(engine_module(p))
