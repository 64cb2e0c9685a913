"""The package's layers point one way: drawn from the imports of every module (module
level and inside functions), no module imports a module of a higher layer, and the
module graph has no cycle. docs/ARCHITECTURE.md draws the same layers."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import rhmfast

ROOT = Path(rhmfast.__file__).parent

# lowest first; a module belongs to the layer of its longest matching prefix
LAYERS: list[tuple[str, ...]] = [
    ("rhmfast._rhmfast", "rhmfast._args", "rhmfast._tokens", "rhmfast._io"),
    ("rhmfast.grammar", "rhmfast.grammar_io", "rhmfast.index", "rhmfast.counting", "rhmfast.posterior",
     "rhmfast.strategies", "rhmfast.demo"),
    ("rhmfast.stats",),
    ("rhmfast.metrics", "rhmfast.trainset"),
    ("rhmfast.diffusion",),
    ("rhmfast.analysis", "rhmfast.report"),
    ("rhmfast.knownanswers",),
    ("rhmfast.experiments", "rhmfast.audit", "rhmfast.data"),
    ("rhmfast.cli", "rhmfast.__main__"),
]
# numpy-only layers: importing them never imports torch
NUMPY_ONLY = ["rhmfast", "rhmfast.stats", "rhmfast.analysis", "rhmfast.knownanswers.counts", "rhmfast.audit",
              "rhmfast.data", "rhmfast.metrics", "rhmfast.cli"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> int | None:
    best, level = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    return level


def imports() -> dict[str, set[str]]:
    """module -> the rhmfast modules it imports (``from a import b`` counts as ``a.b``
    when that is a module, else ``a``)."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in modules.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
                for a in node.names:
                    found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
        out[name] = {m for m in found if m == "rhmfast" or m.startswith("rhmfast.")}
    return out


GRAPH = imports()


def test_every_module_has_a_layer():
    assert [m for m in GRAPH if m != "rhmfast" and layer_of(m) is None] == []


def test_no_import_points_up():
    upward = []
    for name, deps in GRAPH.items():
        if name == "rhmfast":  # the facade package: checked below
            continue
        for dep in deps:
            if dep == "rhmfast":
                continue  # the package itself (its __init__ imports the facade layers only)
            if layer_of(dep) > layer_of(name):
                upward.append(f"{name} (layer {layer_of(name)}) imports {dep} (layer {layer_of(dep)})")
    assert upward == []


def test_the_package_facade_imports_only_the_facade_layers():
    assert all(layer_of(dep) <= layer_of("rhmfast.metrics") for dep in GRAPH["rhmfast"]), GRAPH["rhmfast"]


def test_no_import_cycle():
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(GRAPH.get(node, ())):
            if dep not in GRAPH or dep == node:
                continue
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    # a package's __init__ re-exporting its own submodules is not a cycle between layers
    real = [c for c in cycles if not all(x == c[0] or x.startswith(c[0] + ".") or c[0].startswith(x + ".")
                                         for x in c)]
    assert real == []


def test_private_names_stay_in_their_module():
    """No module imports another module's private (underscore) name."""
    leaks = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rhmfast"):
                leaks += [f"{module_name(path)}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")
                          and importlib.util.find_spec(f"{node.module}.{a.name}") is None]  # a private module is fine
    assert leaks == []


def test_imports_inside_functions_are_for_torch_or_matplotlib_only():
    """A function-level import hides a loop between layers unless it defers a heavy
    dependency: torch, matplotlib, tqdm, or (in the command line only) the torch-backed
    subpackages a subcommand needs."""
    heavy = ("torch", "matplotlib", "tqdm")
    deferred = ("rhmfast.diffusion", "rhmfast.experiments", "rhmfast.knownanswers.simulate")
    found = []
    for path in ROOT.rglob("*.py"):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    if all(n.split(".")[0] in heavy for n in names):
                        continue
                    if module_name(path) == "rhmfast.cli" and all(n.startswith(deferred) for n in names):
                        continue
                    found.append(f"{module_name(path)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


@pytest.mark.parametrize("name", NUMPY_ONLY)
def test_numpy_only_layers_do_not_import_torch(name):
    code = f"import sys, {name}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_check_fails_on_an_upward_import():
    """The layer map is not vacuous: analysis importing the experiments is caught."""
    assert layer_of("rhmfast.experiments.prototypes") > layer_of("rhmfast.analysis.excess")
    assert layer_of("rhmfast.stats.chance") < layer_of("rhmfast.diffusion.trainer")
