"""Versioned schema migrations, applied by Alembic, then today's views and functions.

Each revision under ``sql/migrations/versions/`` is a plain SQL file with a two-line Python twin that
Alembic can order; Alembic records what ran in ``public.alembic_version``, so a second run is a no-op.
Migrations are forward-only: a warehouse that holds financial history is repaired by a new migration,
never by rolling one back.

Revisions hold tables, columns, constraints, indexes, triggers, their grants and data changes. Views and
functions (with their comments and grants) live once in ``sql/definitions/`` as ``CREATE OR REPLACE`` files,
which every upgrade that reaches the head re-applies in the manifest's order, in one transaction: applying
them again changes nothing. ``CREATE OR REPLACE`` cannot drop or rename a view's columns or change a
function's result type; such a change fails with :class:`DefinitionConflict`, and is made by a revision that
drops the old object (``DROP VIEW … CASCADE``), after which the definitions create it, and anything the
cascade took, again. See ``sql/README.md``.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from cdp.paths import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"
DEFINITIONS_DIR = SQL_DIR / "definitions"
DEFINITIONS_MANIFEST = DEFINITIONS_DIR / "manifest.txt"

# What PostgreSQL answers when CREATE OR REPLACE cannot change an object in place: a view losing, renaming
# or retyping a column (42P16), a function changing its result type, parameter names or defaults (42P13).
_CANNOT_REPLACE_IN_PLACE = {"42P16", "42P13"}


class DefinitionError(RuntimeError):
    """sql/definitions/ could not be applied; nothing of it was (one transaction)."""


class DefinitionConflict(DefinitionError):
    """A definition cannot replace the object it names in place: a revision must drop the old one first."""


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would read a '%' in a URL-encoded password as a reference.
    config.set_main_option("sqlalchemy.url", _sqlalchemy_url(url).replace("%", "%%"))
    return config


def run_sql_file(name: str) -> None:
    """Execute one migration's SQL file as it is (psycopg runs multi-statement text without parsing it)."""
    sql = (MIGRATIONS_DIR / "versions" / name).read_text()
    op.get_bind().connection.driver_connection.execute(sql)


def definition_files() -> list[Path]:
    """The files of sql/definitions/ in the manifest's order; every file listed exactly once."""
    listed = [
        line.strip()
        for line in DEFINITIONS_MANIFEST.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    present = {path.relative_to(DEFINITIONS_DIR).as_posix() for path in DEFINITIONS_DIR.rglob("*.sql")}
    twice = sorted({name for name in listed if listed.count(name) > 1})
    missing = sorted(set(listed) - present)
    unlisted = sorted(present - set(listed))
    if twice or missing or unlisted:
        raise DefinitionError(
            f"{DEFINITIONS_MANIFEST} does not match the files beside it:"
            + (f" listed twice {twice};" if twice else "")
            + (f" listed but missing {missing};" if missing else "")
            + (f" not listed {unlisted} (add each where it belongs in the order)" if unlisted else "")
        )
    return [DEFINITIONS_DIR / name for name in listed]


def apply_definitions(url: str) -> int:
    """Re-apply every view and function definition, in one transaction; returns the number of files."""
    files = definition_files()
    with psycopg.connect(url) as conn:
        # Two migrations at once would race on the same catalog rows ("tuple concurrently updated").
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cdp.definitions'))")
        for path in files:
            name = path.relative_to(DEFINITIONS_DIR).as_posix()
            try:
                conn.execute(path.read_text())
            except psycopg.Error as error:
                if error.sqlstate in _CANNOT_REPLACE_IN_PLACE:
                    raise DefinitionConflict(
                        f"sql/definitions/{name} cannot replace what the warehouse has in place ({error}). "
                        "Add a revision that drops the old object (DROP VIEW/FUNCTION ... CASCADE); the "
                        "definitions then create it, and whatever the cascade dropped, again."
                    ) from error
                raise DefinitionError(f"sql/definitions/{name}: {error}") from error
    return len(files)


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the revisions up to ``revision``; at the head, then re-apply sql/definitions/ (they are today's
    definitions, which an older revision's tables may not fit)."""
    command.upgrade(alembic_config(url), revision)
    if current_revision(url) == head_revision(url):
        apply_definitions(url)


def current_revision(url: str) -> str | None:
    engine = create_engine(_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()
