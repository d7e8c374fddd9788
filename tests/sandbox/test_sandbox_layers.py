"""The sandbox's shape: no import cycles, no imports hidden in functions, and every vendor registered once.

A new fake is one module plus one line in ``cdp_sandbox.vendors``; these checks keep the modules layered
(each imports only modules below it) so that stays true. Each rule is also shown to catch its mistake.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import cdp_sandbox
from cdp_sandbox.generator import World
from cdp_sandbox.server import SOURCES, sandbox_settings
from cdp_sandbox.vendors import VENDORS, build_order

PACKAGE = Path(cdp_sandbox.__file__).parent


def _imports(source: str) -> tuple[set[str], list[str]]:
    """The cdp_sandbox modules a module imports, and those it imports inside a function."""
    tree = ast.parse(source)
    found: set[str] = set()
    nested: list[str] = []
    for parent in ast.walk(tree):
        for node in ast.iter_child_nodes(parent):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module == "cdp_sandbox":
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cdp_sandbox."):
                names = [node.module.split(".")[1]]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[1] for a in node.names if a.name.startswith("cdp_sandbox.")]
            found.update(names)
            if names and isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.If):
                nested.extend(names)  # in a function, or under `if TYPE_CHECKING:`
    return found, nested


def _graph(sources: dict[str, str]) -> dict[str, set[str]]:
    return {name: _imports(source)[0] for name, source in sources.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(PACKAGE.glob("*.py"))}


def test_no_import_cycles_inside_the_sandbox(sources: dict[str, str]) -> None:
    assert _cycle(_graph(sources)) is None
    broken = {**sources, "core": sources["core"] + "\nfrom cdp_sandbox import vendors\n"}
    assert _cycle(_graph(broken)) is not None, "a cycle is caught"


def test_no_sandbox_import_is_hidden_in_a_function(sources: dict[str, str]) -> None:
    assert {name: _imports(source)[1] for name, source in sources.items() if _imports(source)[1]} == {}
    hidden = "def handle():\n    from cdp_sandbox.apis import Response\n"
    assert _imports(hidden)[1] == ["apis"]
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cdp_sandbox import apis\n"
    assert _imports(typing_only)[1] == ["apis"]


def test_the_vendor_modules_know_neither_the_registry_nor_the_assembled_world(
    sources: dict[str, str],
) -> None:
    graph = _graph(sources)
    above = {"vendors", "generator", "server", "devserver", "commands", "truth", "legacy", "legacy_referrals"}
    vendor_modules = {
        vendor.build.__module__.rsplit(".", 1)[1] for vendor in VENDORS.values() if vendor.build
    } | {vendor.settings.__module__.rsplit(".", 1)[1] for vendor in VENDORS.values()}
    assert {"moodle", "stripe", "salesforce", "surveys", "ledger", "zendesk", "volunteers"} <= vendor_modules
    assert {module: graph[module] & above for module in vendor_modules if graph[module] & above} == {}


def test_every_vendor_is_mounted_built_and_configured_from_the_registry() -> None:
    assert tuple(name for name, vendor in VENDORS.items() if vendor.api is not None) == SOURCES
    assert "ledger" not in SOURCES and "ledger" in VENDORS
    order = [vendor.name for vendor in build_order()]
    for vendor in build_order():
        assert all(order.index(before) < order.index(vendor.name) for before in vendor.after), vendor.name
    world = World(seed=5, learners=60)
    for name in VENDORS:
        settings = sandbox_settings(world, "http://127.0.0.1:1", name, "/tmp/drop")
        assert settings.credential == world.credentials.for_source(name)
        if name in SOURCES:
            # A vendor's own API root under its mount, as its real host has it (api.surveymonkey.com/v3, /api).
            root = {"surveymonkey": "/v3", "galaxy": "/api"}.get(name, "")
            assert settings.base_url == f"http://127.0.0.1:1/{name}{root}"
