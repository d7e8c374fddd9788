"""No import cycles in the package, counting imports inside function bodies (which hide a cycle from the
interpreter but not from a reader): a cycle means two modules that cannot be understood, tested or moved
apart. The fix is to move the piece both need down a layer, not to hide an import in a function."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest

INCLUDE = Path(__file__).resolve().parents[1] / "include"

# The development sandbox (package cdp_sandbox) has its own check: tests/sandbox/test_sandbox_layers.py.


def _graph() -> grimp.ImportGraph:
    if str(INCLUDE) not in sys.path:
        sys.path.insert(0, str(INCLUDE))
    return grimp.build_graph("cdp", cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Groups of modules that import each other in a circle (strongly connected components, Tarjan)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1 or module in graph.find_modules_directly_imported_by(module):
                groups.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(modules) + 100))
    try:
        for module in modules:
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return groups


def _describe(graph: grimp.ImportGraph, group: list[str]) -> str:
    """One circle of the group, with the line of each import: `a:12 -> b:40 -> a`."""
    members = set(group)
    start = group[0]
    for imported in sorted(graph.find_modules_directly_imported_by(start) & members):
        back = graph.find_shortest_chain(importer=imported, imported=start)
        if back:
            chain = [start, *back]
            steps = []
            for importer, target in zip(chain, chain[1:], strict=False):
                lines = sorted(
                    d["line_number"] for d in graph.get_import_details(importer=importer, imported=target)
                )
                steps.append(f"{importer}:{','.join(map(str, lines))}")
            return " -> ".join([*steps, start])
    return ", ".join(group)


def test_the_package_has_no_import_cycles() -> None:
    graph = _graph()
    cycles = [_describe(graph, group) for group in _cycles(graph)]
    assert not cycles, "import cycles (module:line of each import):\n" + "\n".join(cycles)


def test_the_check_sees_a_cycle_hidden_in_a_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "circular"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circular import b\n")
    (package / "b.py").write_text("def later():\n    from circular import a\n    return a\n")
    (package / "c.py").write_text("from circular import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("circular", cache_dir=None)
    assert _cycles(graph) == [["circular.a", "circular.b"]]
    assert _describe(graph, ["circular.a", "circular.b"]) == "circular.a:1 -> circular.b:2 -> circular.a"
