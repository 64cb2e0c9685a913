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
NUMPY_ONLY = ["rhmfast", "rhmfast.stats", "rhmfast.analysis", "rhmfast.analysis.sweeps", "rhmfast.analysis.excess",
              "rhmfast.analysis.descriptive", "rhmfast.analysis.blocks", "rhmfast.knownanswers.memorizer",
              "rhmfast.knownanswers.counts", "rhmfast.audit", "rhmfast.data", "rhmfast.metrics", "rhmfast.trainset",
              "rhmfast.cli"]
NATIVE = "rhmfast._rhmfast"  # the extension module (no .py file)
# what `from rhmfast import X` (X not a module) reaches: the package facade, whose layer is
FACADE = "rhmfast.metrics"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> int | None:
    if name == "rhmfast":
        name = FACADE
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
                    sub = f"{base}.{a.name}"
                    found.add(sub if sub in modules or sub == NATIVE else base)
        out[name] = {m for m in found if m == "rhmfast" or m.startswith("rhmfast.")}
    return out


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a lower layer up to a higher one (the package itself, ``rhmfast``,
    is exempt as an importer: it is the facade)."""
    return [f"{name} (layer {layer_of(name)}) imports {dep} (layer {layer_of(dep)})"
            for name, deps in graph.items() if name != "rhmfast"
            for dep in deps if layer_of(dep) is not None and layer_of(dep) > layer_of(name)]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules; a package and its own submodules (its ``__init__``
    re-exporting them) do not count."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep not in graph or dep == node:
                continue
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])

    def own(a: str, b: str) -> bool:  # a package and its submodule
        return a != "rhmfast" and b != "rhmfast" and (a.startswith(b + ".") or b.startswith(a + "."))
    return [c for c in cycles if not all(own(c[0], x) or x == c[0] for x in c[1:])]


GRAPH = imports()


def test_every_module_has_a_layer():
    assert [m for m in GRAPH if m != "rhmfast" and layer_of(m) is None] == []


def test_the_graph_has_the_known_edges():
    """The import graph is real (not empty): a few edges the layering rests on."""
    assert "rhmfast.stats.chance" in GRAPH["rhmfast.analysis.memorization"]
    assert "rhmfast._rhmfast" in GRAPH["rhmfast.grammar"]
    assert "rhmfast.knownanswers.counts" in GRAPH["rhmfast.audit.statistics"]
    assert sum(len(d) for d in GRAPH.values()) > 100


def test_no_import_points_up():
    assert upward_edges(GRAPH) == []


def test_the_package_facade_imports_only_the_facade_layers():
    assert all(layer_of(dep) <= layer_of(FACADE) for dep in GRAPH["rhmfast"]), GRAPH["rhmfast"]


def test_no_import_cycle():
    assert find_cycles(GRAPH) == []


def test_the_checks_fail_on_an_upward_import_and_a_cycle():
    """The checks are not vacuous: a synthetic upward edge and a synthetic cycle are caught."""
    up = {**GRAPH, "rhmfast.stats.chance": GRAPH["rhmfast.stats.chance"] | {"rhmfast.experiments.prototypes"}}
    assert upward_edges(up) == ["rhmfast.stats.chance (layer 2) imports rhmfast.experiments.prototypes (layer 7)"]
    facade = {**GRAPH, "rhmfast.grammar": GRAPH["rhmfast.grammar"] | {"rhmfast"}}  # from rhmfast import report fn
    assert len(upward_edges(facade)) == 1
    loop = {**GRAPH, "rhmfast.stats.ranks": GRAPH["rhmfast.stats.ranks"] | {"rhmfast.stats.chance"},
            "rhmfast.stats.chance": GRAPH["rhmfast.stats.chance"] | {"rhmfast.stats.ranks"}}
    assert find_cycles(loop)


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
