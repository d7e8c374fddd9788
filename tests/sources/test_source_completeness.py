"""Every registered source is complete: each of its streams has a pool, its SQL on disk, a sandbox that
serves it, a contract test, its connection in docker-compose and `.env.example`, its rows in the README,
and, when its core table holds personal data, that table in the merge lineage and in the privacy export
and erasure.

Driven by the source registry (`cdp.sources.registry.SOURCES`), so a new source is checked from the line
that registers it. Each gap is named in words; the tests at the end break a source on purpose and check
that the gap is named.

Conventions checked here:
- contract test: a module under `tests/sources/` or `tests/sync/` (a push-only source: `tests/webhooks/`)
  names the stream, as `"source.stream"`,
  `("source", "stream")` or `spec_for("source", "stream")`;
- README: a row `| `source` | `stream` |` in the streams table, and each connection id in backticks in the
  Configuration section's connection table;
- connections: `AIRFLOW_CONN_<ID>` in `docker-compose.yaml` and `.env.example`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from cdp.identity.merges import UNSYNCED_COLUMNS, lineage_columns, person_references
from cdp.paths import PROJECT_ROOT
from cdp.runtime import DEFAULT_POOL, POOLS
from cdp.sources import validation as v
from cdp.sources.registry import SOURCES, Source
from cdp.sources.spec import ACTIVITY, StreamSpec, VendorPool
from cdp.sync.engine import sql_path

TESTS = Path(__file__).resolve().parents[1]
# A push-only source's contract is its webhook's (tests/webhooks/).
CONTRACT_TEST_FOLDERS = (TESTS / "sources", TESTS / "sync", TESTS / "webhooks")
NOT_CONTRACT_TESTS = {"sources/test_order.py", "sources/test_source_completeness.py"}  # they name streams too
# What `cdp privacy export` reads: privacy.export_person and the privacy functions it and cdp.privacy call
# (`*_of`, export_person_ops); what `cdp privacy erase` changes: the erase functions and the triggers the
# erasure fires (core.erase_support_tickets, privacy.keep_erased_person_blank).
EXPORT_FUNCTIONS = "n.nspname = 'privacy' AND (p.proname LIKE 'export%' OR p.proname LIKE '%\\_of')"
ERASE_FUNCTIONS = (
    "n.nspname IN ('privacy', 'core') AND (p.proname LIKE 'erase%' OR p.proname LIKE 'keep\\_erased%')"
)


def sandbox_serves(source: str, stream: str) -> bool:
    """The sandbox can stand in for the stream: it configures the source's connector and holds the stream's
    records. The one place that knows the sandbox's names (re-point it when the sandbox moves)."""
    from cdp_sandbox import volunteers
    from cdp_sandbox.generator import World
    from cdp_sandbox.server import SOURCES as MOUNTS
    from cdp_sandbox.server import sandbox_settings

    world = _small_world(World)
    try:
        sandbox_settings(world, "http://sandbox.invalid", source)
    except (KeyError, AttributeError):  # no defaults, no credentials for it
        return False
    if source not in MOUNTS and source != "ledger":  # the ledger is served as dropped files, not HTTP
        return False
    tables = {*world.tables, *(("galaxy", name) for name in volunteers.of(world).tables)}
    return (source, stream) in tables


_WORLDS: dict[type, object] = {}


def _small_world(world_type: type):
    if world_type not in _WORLDS:
        _WORLDS[world_type] = world_type(seed=3, learners=30)
    return _WORLDS[world_type]


@dataclass(frozen=True)
class Project:
    """What the check reads outside the source's folder."""

    compose: str
    env_example: str
    readme: str
    test_modules: dict[str, str]  # path -> text, of the modules that may hold contract tests
    person_columns: dict[str, set[str]]  # core table -> its columns that hold a person id
    personal_tables: set[str]  # core tables with columns registered in audit.personal_column
    lineage: frozenset[tuple[str, str]]
    export_sql: str
    erase_sql: str


def _configuration_section(readme: str) -> str:
    start = readme.index("## Configuration")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end > 0 else None]


def contract_tests(spec: StreamSpec, test_modules: dict[str, str]) -> list[str]:
    source, stream = re.escape(spec.source), re.escape(spec.stream)
    named = re.compile(rf"""["']{source}\.{stream}["']|["']{source}["']\s*,\s*["']{stream}["']""")
    return [path for path, text in test_modules.items() if named.search(text)]


def gaps(
    source: Source,
    spec: StreamSpec,
    project: Project,
    *,
    serves: Callable[[str, str], bool] = sandbox_serves,
    pools: tuple[VendorPool, ...] = POOLS,
) -> list[str]:
    """What ``spec``'s stream of ``source`` lacks, in words; empty when nothing."""
    found: list[str] = []
    if source.pool is None:
        found.append(f"{source.name}: no pool (POOL in cdp/sources/{source.name}/specs.py)")
    elif source.pool.name != DEFAULT_POOL and source.pool not in pools:
        found.append(
            f"{source.name}: pool {source.pool.name} is not among the pools created (cdp.runtime.POOLS)"
        )
    if not spec.transforms:
        found.append(f"{spec.key}: no SQL files")
    for name in spec.transforms:
        path = sql_path(spec, name)
        if not path.is_file():
            found.append(f"{spec.key}: SQL file {name} missing ({path})")
    if not serves(spec.source, spec.stream):
        found.append(f"{spec.key}: the sandbox does not serve it")
    if not contract_tests(spec, project.test_modules):
        found.append(
            f"{spec.key}: no contract test names it in tests/sources/, tests/sync/ or tests/webhooks/"
        )
    for conn_id in source.connections:
        variable = f"AIRFLOW_CONN_{conn_id.upper()}"
        if not re.search(rf"^\s*{variable}:", project.compose, re.MULTILINE):
            found.append(f"{source.name}: connection {conn_id} missing from docker-compose.yaml ({variable})")
        if not re.search(rf"^{variable}=", project.env_example, re.MULTILINE):
            found.append(f"{source.name}: connection {conn_id} missing from .env.example ({variable})")
        if f"`{conn_id}`" not in _configuration_section(project.readme):
            found.append(f"{source.name}: connection {conn_id} missing from the README's connection table")
    if not re.search(
        rf"^\| `{re.escape(spec.source)}` \| `{re.escape(spec.stream)}` \|", project.readme, re.MULTILINE
    ):
        found.append(f"{spec.key}: no row in the README's streams table")
    table = spec.entity
    for column in sorted(project.person_columns.get(table, ())):
        if (table, column) not in project.lineage | UNSYNCED_COLUMNS:
            found.append(f"{table}.{column}: not in the merge lineage (sql/dedupe/post_merge_lineage.sql)")
    # A table that names a person is part of what an export hands over; one with personal columns of its
    # own must be erased too (one that only points to the person follows the person's erasure).
    mention = re.compile(rf"\b{re.escape(table)}\b")
    if (table in project.person_columns or table in project.personal_tables) and not mention.search(
        project.export_sql
    ):
        found.append(f"{table}: holds personal data but no privacy export function reads it")
    if table in project.personal_tables and not mention.search(project.erase_sql):
        found.append(
            f"{table}: holds personal columns (audit.personal_column) but no erasure function touches it"
        )
    return found


@pytest.fixture(scope="module")
def project(pg_server, migrated_template: str) -> Iterator[Project]:
    test_modules = {
        str(path.relative_to(TESTS)): path.read_text()
        for folder in CONTRACT_TEST_FOLDERS
        for path in sorted(folder.rglob("*.py"))
        if str(path.relative_to(TESTS)) not in NOT_CONTRACT_TESTS
    }
    # Read the migrated template and disconnect at once: other tests copy it (CREATE DATABASE ... TEMPLATE).
    with psycopg.connect(pg_server.url(migrated_template), row_factory=dict_row) as conn:
        person_columns: dict[str, set[str]] = {}
        for reference in person_references(conn):
            person_columns.setdefault(reference.table, set()).add(reference.column)
        personal_tables = {
            row["table_name"] for row in conn.execute("SELECT table_name FROM audit.personal_column")
        }

        def definitions(where: str) -> str:
            return "\n".join(
                row["definition"]
                for row in conn.execute(
                    "SELECT pg_get_functiondef(p.oid) AS definition FROM pg_proc p"
                    f" JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {where}"
                )
            )

        export_sql, erase_sql = definitions(EXPORT_FUNCTIONS), definitions(ERASE_FUNCTIONS)
    assert export_sql and erase_sql, "the privacy functions were not found: the check would pass on nothing"
    yield Project(
        compose=(PROJECT_ROOT / "docker-compose.yaml").read_text(),
        env_example=(PROJECT_ROOT / ".env.example").read_text(),
        readme=(PROJECT_ROOT / "README.md").read_text(),
        test_modules=test_modules,
        person_columns=person_columns,
        personal_tables=personal_tables,
        lineage=lineage_columns(),
        export_sql=export_sql,
        erase_sql=erase_sql,
    )


STREAMS = [(source, spec) for source in SOURCES for spec in source.specs]
# Gaps found when this check was written, each to be closed where it lies (outside the source folders). Listed
# exactly, so the test fails both on a new gap and once one is closed (then delete its line here).
# None left: the sandbox's registration form (cdp_sandbox.registration) sends signed webhooks.
KNOWN_GAPS: dict[str, list[str]] = {}


@pytest.mark.parametrize(("source", "spec"), STREAMS, ids=[spec.key for _, spec in STREAMS])
def test_every_registered_stream_is_complete(source: Source, spec: StreamSpec, project: Project) -> None:
    assert gaps(source, spec, project) == KNOWN_GAPS.get(spec.key, [])


def test_known_gaps_name_registered_streams() -> None:
    assert set(KNOWN_GAPS) <= {spec.key for _, spec in STREAMS}


def test_every_source_has_a_setup_page_and_every_sql_file_in_its_folder_is_used() -> None:
    for source in SOURCES:
        assert (source.folder / "SETUP.md").is_file(), f"{source.name}: no SETUP.md"
        used = {sql_path(spec, name) for spec in source.specs for name in spec.transforms}
        unused = sorted(path.name for path in (source.folder / "sql").glob("*.sql") if path not in used)
        assert unused == [], f"{source.name}: SQL files no stream runs: {unused}"


# ------------------------------------------------------------------ the check names what is missing
ACME = StreamSpec(
    "acme", "widgets", "core.course", ACTIVITY, v.required("id"), ("widgets.sql",), after=("moodle.users",)
)
ACME_SOURCE = Source("acme", (ACME,), VendorPool("acme_api", 1, "Acme"), None, ("acme",))


def _complete_project(project: Project) -> Project:
    """A project where the made-up source `acme` has everything outside its folder."""
    return replace(
        project,
        compose=project.compose + "\n    AIRFLOW_CONN_ACME: x\n",
        env_example=project.env_example + "\nAIRFLOW_CONN_ACME=x\n",
        readme=project.readme.replace("## Configuration\n", "## Configuration\n`acme`\n")
        + "\n| `acme` | `widgets` | `core.course` |\n",
        test_modules={**project.test_modules, "sources/test_acme.py": 'KEY = "acme.widgets"'},
    )


def _acme_gaps(project: Project, *, source: Source = ACME_SOURCE, serves: bool = True, sql: bool = True):
    sql_dir = source.folder / "sql"

    def spec_path(spec: StreamSpec, name: str) -> Path:
        return sql_dir / name

    pools = (*POOLS, VendorPool("acme_api", 1, "Acme"))
    # The made-up folder does not exist: stand its SQL file in with a real one, or with none.
    real = PROJECT_ROOT / "sql" / "sync" / "_resolve_people.sql"
    specs = [replace(spec, transforms=(str(real),) if sql else ("widgets.sql",)) for spec in source.specs]
    return [
        gap for spec in specs for gap in gaps(source, spec, project, serves=lambda *_: serves, pools=pools)
    ]


def test_a_complete_made_up_source_has_no_gaps(project: Project) -> None:
    assert _acme_gaps(_complete_project(project)) == []


def test_a_stream_whose_sql_file_is_missing_is_named(project: Project) -> None:
    found = _acme_gaps(_complete_project(project), sql=False)
    assert len(found) == 1 and found[0].startswith("acme.widgets: SQL file widgets.sql missing"), found


def test_a_source_without_a_pool_is_named(project: Project) -> None:
    found = _acme_gaps(_complete_project(project), source=replace(ACME_SOURCE, pool=None))
    assert found == ["acme: no pool (POOL in cdp/sources/acme/specs.py)"]


def test_a_pool_that_is_never_created_is_named(project: Project) -> None:
    source = replace(ACME_SOURCE, pool=VendorPool("acme_api", 3, "Acme, declared unlike the pool created"))
    assert _acme_gaps(_complete_project(project), source=source) == [
        "acme: pool acme_api is not among the pools created (cdp.runtime.POOLS)"
    ]


def test_a_stream_the_sandbox_does_not_serve_is_named(project: Project) -> None:
    assert _acme_gaps(_complete_project(project), serves=False) == [
        "acme.widgets: the sandbox does not serve it"
    ]


def test_a_stream_without_a_contract_test_is_named(project: Project) -> None:
    complete = _complete_project(project)
    without = replace(complete, test_modules=project.test_modules)
    assert _acme_gaps(without) == [
        "acme.widgets: no contract test names it in tests/sources/, tests/sync/ or tests/webhooks/"
    ]


def test_a_connection_missing_from_compose_env_example_and_readme_is_named(project: Project) -> None:
    complete = _complete_project(project)
    assert _acme_gaps(replace(complete, compose=project.compose)) == [
        "acme: connection acme missing from docker-compose.yaml (AIRFLOW_CONN_ACME)"
    ]
    assert _acme_gaps(replace(complete, env_example=project.env_example)) == [
        "acme: connection acme missing from .env.example (AIRFLOW_CONN_ACME)"
    ]
    readme_without_connection = complete.readme.replace("## Configuration\n`acme`\n", "## Configuration\n")
    assert _acme_gaps(replace(complete, readme=readme_without_connection)) == [
        "acme: connection acme missing from the README's connection table"
    ]


def test_a_stream_without_its_readme_row_is_named(project: Project) -> None:
    complete = _complete_project(project)
    readme = complete.readme.replace("\n| `acme` | `widgets` | `core.course` |\n", "\n")
    assert _acme_gaps(replace(complete, readme=readme)) == [
        "acme.widgets: no row in the README's streams table"
    ]


def test_a_personal_table_without_lineage_export_or_erasure_is_named(project: Project) -> None:
    complete = _complete_project(project)
    personal = replace(
        complete,
        person_columns={**project.person_columns, "core.course": {"mentor_person_id"}},
        personal_tables={*project.personal_tables, "core.course"},
    )
    assert _acme_gaps(personal) == [
        "core.course.mentor_person_id: not in the merge lineage (sql/dedupe/post_merge_lineage.sql)",
        "core.course: holds personal data but no privacy export function reads it",
        "core.course: holds personal columns (audit.personal_column) but no erasure function touches it",
    ]


def test_the_readme_streams_table_says_what_each_stream_declares() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    wave_words = {1: "people and reference", 2: "activity"}
    for source, spec in STREAMS:
        after = ", ".join(f"`{key}`" for key in spec.after) or "–"
        pool = source.pool.name if source.pool else "–"
        row = f"| `{spec.source}` | `{spec.stream}` | `{spec.entity}` | {wave_words[spec.wave]} | {after} | `{pool}` |"
        assert row in readme.splitlines(), f"README's row for {spec.key} should read: {row}"
