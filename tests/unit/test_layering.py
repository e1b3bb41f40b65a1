"""The house's floors: no import cycle between modules, and no import from a lower floor up.

Every module under `pipeline/` is parsed (never imported) with `ast`. An import counts
wherever it stands, at module level or inside a function, because a lazy import is still a
dependency: hiding a cycle or an upward step in a function body does not remove it. Relative
imports are resolved against the importing module's package, and `from package import name`
counts as an import of the submodule `package.name` when such a module exists, else of the
package itself.

Imports under `if TYPE_CHECKING:` are the one exception, and only for cycles: they never
run, so they cannot close a cycle at import time, and annotations may need to name a type
from a module that imports this one. They still count for the floors: a type-only import
from a higher floor is still a lower floor knowing about a higher one.

The floors, lowest first (a module may import its own floor and the ones below):

0. `models`, `units`, `settings`, `errors`, `logging`, `metrics`, `kafka`: the vocabulary and
   the I/O primitives everything else shares. `units` (the table of units and conversions)
   moved here from `ingest/`: the topology's catalogue checks unit names, and the topology
   sits below ingest. The package's own `__init__` too: it holds only the version, which
   the worker (floor 6) and the CLI (floor 8) both report.
1. `topology`: the deployment format.
2. `aggregates`: the window accumulators (detection's area windows reuse them).
3. `ingest`: adapters and normalization (it reads the topology's catalogue and areas).
4. `sinks`: the stores (they store aggregate rows and incidents).
5. `rules`: detection, clusters, incidents and their lifecycle.
6. `engine`: the stages and their routing, and both engines that run them.
7. `sim`, `contract`, `client`: the tools built on everything below (the simulator, the
   published contract, the handling units' client).
8. `cli`, and `__main__`: the entry point. The brief put `cli`
   on one floor with the three above; it sits one higher here because it is built on them
   (`cityops simulate`, `schemas`, `incidents`) and none of them may reach back into it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGE_ROOT = ROOT / "pipeline"

FLOORS: dict[str, int] = {
    "models": 0,
    "units": 0,
    "settings": 0,
    "errors": 0,
    "logging": 0,
    "metrics": 0,
    "kafka": 0,
    "topology": 1,
    "aggregates": 2,
    "ingest": 3,
    "sinks": 4,
    "rules": 5,
    "engine": 6,
    "sim": 7,
    "contract": 7,
    "client": 7,
    "cli": 8,
    "__init__": 0,
    "__main__": 8,
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a module of the package."""

    importer: str
    target: str
    line: int
    type_checking: bool


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under `root` by dotted name (a package is its `__init__`)."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below `node`, with whether it sits under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, type_checking
                yield from _walk(stmt, type_checking)
            continue
        yield child, type_checking
        yield from _walk(child, type_checking)


def _base_of(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    # A package's own `__init__` is its package: `.` is itself, not its parent.
    keep = len(parts) - node.level + (1 if is_package else 0)
    if keep <= 0:
        msg = f"{importer}: relative import beyond the top package"
        raise ValueError(msg)
    base = ".".join(parts[:keep])
    return f"{base}.{node.module}" if node.module else base


def imports_of(
    importer: str, path: Path, modules: Mapping[str, Path], package: str
) -> Iterator[Import]:
    """The package-internal imports of one module, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node, type_checking in _walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base_of(node, importer, is_package)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        seen: set[str] = set()
        for name in targets:
            if name != package and not name.startswith(package + "."):
                continue
            # `import pipeline.a.b.Name`-like spellings: the longest existing module.
            target = name
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != importer and target not in seen:
                seen.add(target)
                yield Import(importer, target, node.lineno, type_checking)


def import_graph(root: Path, package: str) -> list[Import]:
    """Every package-internal import of every module under `root`."""
    modules = module_names(root, package)
    return [
        imp for name, path in modules.items() for imp in imports_of(name, path, modules, package)
    ]


def find_cycles(imports: list[Import]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_checking:
            graph.setdefault(imp.importer, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def floor_of(module: str, floors: Mapping[str, int]) -> int:
    """The floor of a module: that of its first name below the package."""
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "__init__"
    if first not in floors:
        msg = f"{module}: no floor for {first!r}; add it to FLOORS and to docs/architecture.md"
        raise KeyError(msg)
    return floors[first]


def upward_imports(imports: list[Import], floors: Mapping[str, int]) -> list[str]:
    """Every import from a lower floor to a higher one, as `importer:line -> target`."""
    return [
        f"{imp.importer}:{imp.line} (floor {floor_of(imp.importer, floors)}) -> "
        f"{imp.target} (floor {floor_of(imp.target, floors)})"
        for imp in imports
        if floor_of(imp.importer, floors) < floor_of(imp.target, floors)
    ]


# --- the package itself ---------------------------------------------------------------


def test_every_module_has_a_floor() -> None:
    for name in module_names(PACKAGE_ROOT, "pipeline"):
        floor_of(name, FLOORS)


def test_no_import_cycles() -> None:
    assert find_cycles(import_graph(PACKAGE_ROOT, "pipeline")) == []


def test_no_import_from_a_lower_floor_to_a_higher_one() -> None:
    assert upward_imports(import_graph(PACKAGE_ROOT, "pipeline"), FLOORS) == []


def test_the_graph_is_not_empty() -> None:
    """Guards the two tests above against a checker that silently finds nothing."""
    imports = import_graph(PACKAGE_ROOT, "pipeline")
    assert len(imports) > 200
    targets = {(imp.importer, imp.target) for imp in imports}
    assert ("pipeline.engine.local", "pipeline.engine.routing") in targets


def test_unit_tests_mirror_the_package() -> None:
    """Every folder of tests/unit is a folder of pipeline/: a test lives where its code does."""
    unit = ROOT / "tests" / "unit"
    strays = [
        path.relative_to(unit).as_posix()
        for path in sorted(unit.rglob("*"))
        if path.is_dir()
        and path.name != "__pycache__"
        and not (PACKAGE_ROOT / path.relative_to(unit)).is_dir()
    ]
    assert strays == []


# --- the checker, on a tiny synthetic package -------------------------------------------

TINY_FLOORS = {"low": 0, "high": 1, "__init__": 1}


def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "tiny"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_checker_accepts_a_clean_package(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/a.py": "import os\n",
            "low/b.py": "from . import a\nfrom .a import thing\n",
            "high/__init__.py": "from tiny.low import b\n",
            "high/c.py": "from ..low.a import thing\nimport tiny.high\n",
        },
    )
    imports = import_graph(root, "tiny")
    pairs = {(imp.importer, imp.target) for imp in imports}
    assert pairs == {
        ("tiny.low.b", "tiny.low.a"),
        ("tiny.high", "tiny.low.b"),
        ("tiny.high.c", "tiny.low.a"),
        ("tiny.high.c", "tiny.high"),
    }
    assert find_cycles(imports) == []
    assert upward_imports(imports, TINY_FLOORS) == []


def test_checker_finds_a_cycle_through_relative_and_lazy_imports(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/a.py": "from . import b\n",
            "low/b.py": "def f():\n    from .c import g\n",
            "low/c.py": "from tiny.low.a import x\n",
        },
    )
    assert find_cycles(import_graph(root, "tiny")) == [["tiny.low.a", "tiny.low.b", "tiny.low.c"]]


def test_checker_lets_type_checking_imports_close_no_cycle(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/a.py": "from tiny.low import b\n",
            "low/b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n"
            ),
        },
    )
    imports = import_graph(root, "tiny")
    assert [imp.type_checking for imp in imports if imp.importer == "tiny.low.b"] == [True]
    assert find_cycles(imports) == []


def test_checker_finds_an_upward_import(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/a.py": "import typing\nif typing.TYPE_CHECKING:\n    from ..high import c\n",
            "high/__init__.py": "",
            "high/c.py": "",
        },
    )
    assert upward_imports(import_graph(root, "tiny"), TINY_FLOORS) == [
        "tiny.low.a:3 (floor 0) -> tiny.high.c (floor 1)"
    ]


def test_checker_refuses_a_module_without_a_floor(tmp_path: Path) -> None:
    root = _package(tmp_path, {"attic.py": ""})
    with pytest.raises(KeyError, match="attic"):
        for name in module_names(root, "tiny"):
            floor_of(name, TINY_FLOORS)
