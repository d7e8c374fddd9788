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


def dag_table() -> dict[str, tuple[set[str], str]]:
    """The README's DAG table: dag id -> (its tags, its "when" cell)."""
    start = README.index("| DAG | tags | when | does |")
    rows = {}
    for line in README[start : README.index("\n\n", start)].splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = ({tag.strip() for tag in cells[1].split(",")}, cells[2])
    return rows


def dag_file_facts() -> dict[str, tuple[set[str], bool]]:
    """Each DAG file, read without running it: dag id -> (its literal tags, scheduled after the first sync)."""
    import ast

    facts = {}
    for path in sorted((ROOT / "dags").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dag":
                keywords = {keyword.arg: keyword.value for keyword in node.keywords}
                tags = {element.value for element in keywords["tags"].elts}
                schedule = keywords["schedule"]
                after_sync = isinstance(schedule, ast.Call) and getattr(schedule.func, "id", "") in {
                    "after_first_sync", "after_first_sync_and_on_changes",
                }  # fmt: skip
                facts[path.stem] = (tags, after_sync)
    return facts


def test_the_readme_dag_table_has_every_dag_with_its_tags_and_when_it_starts() -> None:
    table, files = dag_table(), dag_file_facts()
    assert set(table) == set(files), "the README's DAG table and dags/ list different DAGs"
    for dag_id, (tags, after_sync) in files.items():
        assert table[dag_id][0] == tags, f"{dag_id}: README says tags {table[dag_id][0]}, the DAG has {tags}"
        said = "after the first complete sync" in table[dag_id][1]
        assert said == after_sync, (
            f"{dag_id}: the README's 'when' and its schedule disagree on the first sync"
        )


def test_the_readme_does_not_say_the_ui_groups_dags_by_tag() -> None:
    # Airflow 3's DAG list is one list with a tag filter; a README that promises groups sends people looking.
    assert not re.search(r"group(s|ed)? (the DAGs )?by tag", README, re.I)
