"""The README names what exists: every dotted ``cdp.…`` name resolves, every connection is in its table, and
the Airflow Variables it names are the ones the DAGs read."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def resolves(dotted: str) -> bool:
    """A module, or an attribute of one (``cdp.runtime.SYNC_DEADLINE``), that can be imported."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_every_dotted_cdp_name_in_the_readme_exists() -> None:
    names = sorted(set(re.findall(r"`(cdp(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`", README)))
    assert names, "the README names no cdp.… objects: the pattern is broken"
    missing = [name for name in names if not resolves(name)]
    assert not missing, f"the README names what does not exist: {missing}"


def test_the_resolver_refuses_a_stale_name() -> None:
    assert resolves("cdp.identity.config.ResolveConfig")
    assert not resolves("cdp.identity.config.DedupeSettings")
    assert not resolves("cdp.no_such_module")


def connection_table() -> str:
    start = README.index("**Connections**")
    return README[start : README.index("\n\n", README.index("| conn id |", start))]


def test_every_connection_of_the_deployment_is_in_the_readme_table() -> None:
    env_example = (ROOT / ".env.example").read_text(encoding="utf-8")
    conn_ids = {name.lower() for name in re.findall(r"^AIRFLOW_CONN_([A-Z0-9_]+)=", env_example, re.M)}
    assert conn_ids, ".env.example lists no AIRFLOW_CONN_ variables"
    in_table = set(re.findall(r"`([a-z0-9_]+)`", connection_table()))
    assert conn_ids | {"warehouse"} <= in_table, (
        f"missing from the README table: {sorted(conn_ids - in_table)}"
    )


def test_the_variables_the_dags_read_are_the_ones_the_readme_names() -> None:
    read = set()
    for dag_file in (ROOT / "dags").glob("*.py"):
        read |= set(re.findall(r"Variable\.get\(\s*\"([^\"]+)\"", dag_file.read_text(encoding="utf-8")))
    section = README[README.index("**Airflow Variables:**") :].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z0-9_]+)`", section)) - {"folder", "migration_phase1_audit"}
    assert named == read, f"the DAGs read {sorted(read)}, the README names {sorted(named)}"


def test_every_repository_path_in_the_readme_exists() -> None:
    paths = set(re.findall(r"`((?:include|sql|dags|tests|plugins|benchmarks|sandbox)/[^`\s]*)`", README))
    assert paths, "the README names no repository paths: the pattern is broken"
    concrete = {path.split("::")[0] for path in paths if not re.search(r"[<>*{]|\.\.\.|…", path)}
    missing = sorted(path for path in concrete if not (ROOT / path).exists())
    assert not missing, f"the README names paths that do not exist: {missing}"
