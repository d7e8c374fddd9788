"""The alert catalogue, the code and the README runbook agree: every alert the code can send has a
runbook entry, and every runbook entry is an alert the code really sends."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import cdp
from cdp.alert_catalog import ALERTS, DATA_ALERT_PREFIXES, NOT_ALERTS, title

REPO = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("include/cdp", "dags", "plugins")


def _code_files() -> list[Path]:
    return [path for folder in CODE_FOLDERS for path in sorted((REPO / folder).rglob("*.py"))]


def data_alert_prefixes_in_code() -> set[str]:
    """Key prefixes of every Finding built and every alert_once scope, read from the source."""
    prefixes: set[str] = set()
    for path in _code_files():
        text = path.read_text()
        prefixes |= set(re.findall(r"Finding\(\s*f?[\"']([a-z_]+):", text))
        # a scope given as a module constant (ALERT_SCOPE = "referral_outage:") counts like a literal one
        scopes = re.findall(r"scope=f?[\"']([^\"']+)[\"']", text)
        scopes += re.findall(r"^[A-Z_]*SCOPE\s*=\s*f?[\"']([^\"']+)[\"']", text, re.M)
        for scope in scopes:
            prefixes |= {part.split(":", 1)[0].strip() for part in scope.split(",") if part.strip()}
    return prefixes


def error_classes_in_code() -> set[str]:
    """Every exception class the package defines (imported, so subclasses of subclasses count too)."""
    classes: set[str] = set()
    for module in pkgutil.walk_packages(cdp.__path__, "cdp."):
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.name
            ):
                classes.add(name)
    return classes


def mechanisms_in_code() -> set[str]:
    found = set()
    for path in _code_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "RunFailureNotifier":
                    found.add("run_failed")
                if name == "DeadlineAlert":
                    found.add("deadline_missed")
    return found


def runbook_entries(readme: str) -> dict[str, str]:
    """The README's "Runbook" section: `### \\`key\\` — title` headings and their bodies."""
    section = re.search(r"^## Runbook\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Runbook' section"
    parts = re.split(r"^### `([^`]+)`[^\n]*\n", section.group(1), flags=re.MULTILINE)
    return {key: body for key, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.fixture(scope="module")
def readme() -> str:
    return (REPO / "README.md").read_text()


def test_every_data_alert_in_code_is_catalogued_and_back() -> None:
    assert data_alert_prefixes_in_code() == DATA_ALERT_PREFIXES


def test_every_error_class_is_an_alert_or_says_why_not() -> None:
    in_code = error_classes_in_code()
    catalogued = {key.split(":", 1)[1] for key in ALERTS if key.startswith("error:")}
    assert in_code - catalogued - set(NOT_ALERTS) == set(), "error classes missing from cdp.alert_catalog"
    assert catalogued - in_code == set(), "catalogued error classes that the code does not define"
    assert set(NOT_ALERTS) - in_code == set(), "NOT_ALERTS names classes that do not exist"
    assert not catalogued & set(NOT_ALERTS)


def test_the_run_failure_and_deadline_alerts_are_wired() -> None:
    assert mechanisms_in_code() == {"run_failed", "deadline_missed"}


def test_every_alert_has_a_runbook_entry_and_every_entry_an_alert(readme: str) -> None:
    entries = runbook_entries(readme)
    assert set(ALERTS) - set(entries) == set(), "alerts without a runbook entry in README.md"
    assert set(entries) - set(ALERTS) == set(), "runbook entries for alerts the code does not send"
    for key, body in entries.items():
        assert "**Means**" in body and "**Do**" in body, f"runbook entry {key} lacks Means/Do"


def test_a_missing_or_invented_runbook_entry_is_caught(readme: str) -> None:
    missing = re.sub(r"^### `quarantine`.*?(?=^### )", "", readme, count=1, flags=re.MULTILINE | re.DOTALL)
    assert "quarantine" not in runbook_entries(missing)
    invented = readme.replace(
        "## Runbook\n", "## Runbook\n\n### `made_up` — nothing\n**Means** x **Do** y\n", 1
    )
    assert set(runbook_entries(invented)) - set(ALERTS) == {"made_up"}


def test_a_key_maps_to_its_kind() -> None:
    assert title("count_diff:moodle.users") == ALERTS["count_diff"].title
    assert title("error:AuthError") == ALERTS["error:AuthError"].title
    with pytest.raises(KeyError):
        title("unheard_of:thing")
