"""The layout is the architecture: the import graph of calendly_svc has no cycle, between modules
or between packages, and each package imports only what its docstring allows.

Every `calendly_svc` import counts: at module level, inside functions, and under TYPE_CHECKING
(a type-only import is still a dependency; it must not hide a cycle).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "calendly_svc"
# entry points: they assemble everything, and nothing imports them
ENTRY_POINTS = frozenset({"app", "__main__", "devenv"})
# what each package may import besides itself and the top-level modules that are not entry
# points; the same words as each package's docstring
ALLOWED: dict[str, frozenset[str]] = {
    "store": frozenset(),
    "calendly": frozenset({"store"}),
    "apply": frozenset({"store", "calendly"}),
    "ingest": frozenset({"store", "apply"}),
    "integrations": frozenset({"store", "calendly", "apply"}),
    "worker": frozenset({"store", "calendly", "apply", "ingest", "integrations"}),
    "http": frozenset({"store", "calendly", "apply", "ingest", "integrations"}),
    "sandbox": frozenset(),
}
MAX_TOP_LEVEL_MODULES = 12


def _module_name(path: Path) -> str:
    """calendly_svc/worker/engine.py -> calendly_svc.worker.engine."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _absolute(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imported(importer: str, path: Path, known: set[str]) -> Iterator[str]:
    """The calendly_svc modules a module imports (a name imported from a package counts as
    its submodule when one exists, else as the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(importer, is_package, node)
            if not target.startswith("calendly_svc"):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield submodule if submodule in known else target


def import_graph() -> dict[str, set[str]]:
    """Module -> the calendly_svc modules it imports (itself excluded)."""
    modules = _modules()
    known = set(modules)
    return {
        name: {target for target in _imported(name, path, known) if target != name}
        for name, path in modules.items()
    }


def group(module: str) -> str:
    """The package a module belongs to, or the top-level module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "calendly_svc"


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed to packages (top-level modules stay single nodes)."""
    collapsed: dict[str, set[str]] = {}
    for source, targets in graph.items():
        edges = collapsed.setdefault(group(source), set())
        edges.update(group(target) for target in targets if group(target) != group(source))
    return collapsed


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _packages() -> list[str]:
    """The subpackages of calendly_svc."""
    return sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The checks below can fail: a cycle of three and a self-contained pair are reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]


def test_the_graph_sees_function_level_and_type_checking_imports() -> None:
    """Lazy and type-only imports are edges too (the worker's queue wiring is one)."""
    graph = import_graph()
    assert "calendly_svc.sandbox" in graph["calendly_svc.__main__"]  # imported inside a function
    assert "calendly_svc.worker.engine" in graph["calendly_svc.worker.queues"]
    assert "calendly_svc.sandbox.models" in graph["calendly_svc.sandbox.state"]  # relative


def test_no_cycle_between_modules() -> None:
    """No module imports itself back through others."""
    assert cycles(import_graph()) == []


def test_no_cycle_between_packages() -> None:
    """Collapsed to packages (top-level modules as their own nodes), the graph is acyclic."""
    assert cycles(package_graph(import_graph())) == []


def test_the_allowed_map_names_every_package() -> None:
    """A new package must say what it may import, here and in its docstring."""
    assert sorted(ALLOWED) == _packages()


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_it_may(package: str) -> None:
    """Each package imports only the packages its docstring allows, and no entry point."""
    imported = package_graph(import_graph()).get(package, set())
    top_level = {name for name in imported if name not in ALLOWED}
    forbidden = (imported - top_level - ALLOWED[package]) | (top_level & ENTRY_POINTS)
    if package == "sandbox":  # the emulator is self-contained
        forbidden |= top_level
    assert set() == forbidden


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_docstring_states_what_it_may_import(package: str) -> None:
    """The docstring exists and names each allowed package in its 'May import' sentence."""
    doc = importlib.import_module(f"calendly_svc.{package}").__doc__ or ""
    may_import = doc.partition("May import:")[2].partition(";")[0]
    assert may_import, f"calendly_svc.{package} has no 'May import:' sentence"
    assert set() == {name for name in ALLOWED[package] if name not in may_import}


def test_at_most_a_dozen_top_level_modules() -> None:
    """The top level holds the entry points and the few modules every layer shares."""
    top_level = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level


def test_only_the_dev_entry_points_import_the_sandbox() -> None:
    """The service never imports the emulator, except __main__ and devenv (dev mode)."""
    importers = {
        source
        for source, targets in import_graph().items()
        if group(source) != "sandbox" and any(group(t) == "sandbox" for t in targets)
    }
    assert importers <= {"calendly_svc.__main__", "calendly_svc.devenv"}
