"""Versioned schema migrations, applied by Alembic.

Each revision under ``sql/migrations/versions/`` is a plain SQL file with a two-line Python twin that
Alembic can order; Alembic records what ran in ``public.alembic_version``, so a second run is a no-op.
Migrations are forward-only: a warehouse that holds financial history is repaired by a new migration,
never by rolling one back.
"""

from __future__ import annotations

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from cdp.paths import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"


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


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    engine = create_engine(_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()
