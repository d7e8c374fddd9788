"""Moodle's own tables, built in PostgreSQL from Moodle's XMLDB schema (``lib/db/install.xml``).

The copy kept under ``tests/vendor_material/moodle/install.xml`` (provenance in the PROVENANCE.md beside it)
is the truth: the tests and the sandbox's Moodle database create ``mdl_*`` tables from it with the mapping
Moodle's own PostgreSQL generator uses (``lib/ddl/postgres_sql_generator.php``):

- ``int``: LENGTH <= 4 -> SMALLINT, <= 9 -> INTEGER, else BIGINT; ``SEQUENCE="true"`` -> BIGSERIAL;
- ``number`` -> NUMERIC(LENGTH, DECIMALS); ``float`` -> DOUBLE PRECISION; ``char`` -> VARCHAR(LENGTH);
  ``text`` -> TEXT; ``binary`` -> BYTEA;
- a NOT NULL ``char`` without a default gets ``DEFAULT ''`` (Moodle stores empty strings, never NULL);
- primary and unique keys become constraints; foreign keys are not enforced by Moodle (an index only),
  so here they become plain indexes; INDEX elements become indexes, named ``<prefix><table>_<n>_<fields>_ix``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

#: The kept, trimmed copy of Moodle's lib/db/install.xml (the sandbox runs from the repository checkout).
INSTALL_XML = Path(__file__).resolve().parents[2] / "tests" / "vendor_material" / "moodle" / "install.xml"
DEFAULT_PREFIX = "mdl_"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    length: str | None
    not_null: bool
    sequence: bool
    default: str | None
    decimals: str | None

    def column_type(self) -> str:
        if self.sequence:
            return "BIGSERIAL"
        if self.type == "int":
            length = int(self.length or 10)
            return "SMALLINT" if length <= 4 else "INTEGER" if length <= 9 else "BIGINT"
        if self.type == "number":
            return f"NUMERIC({int(self.length or 10)}, {int(self.decimals or 0)})"
        if self.type == "float":
            return "DOUBLE PRECISION"
        if self.type == "char":
            return f"VARCHAR({int(self.length or 255)})"
        if self.type == "text":
            return "TEXT"
        if self.type == "binary":
            return "BYTEA"
        raise ValueError(f"XMLDB type {self.type!r} of field {self.name!r} has no PostgreSQL mapping here")


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]
    primary: tuple[str, ...]
    unique_keys: tuple[tuple[str, ...], ...]
    indexes: tuple[tuple[tuple[str, ...], bool], ...]  # (fields, unique)

    def column_names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def read_schema(path: Path = INSTALL_XML) -> dict[str, Table]:
    """The tables of an XMLDB file, by Moodle name (without prefix)."""
    tables: dict[str, Table] = {}
    for element in ElementTree.parse(path).getroot().iter("TABLE"):
        fields = tuple(
            Field(
                f.get("NAME", ""),
                f.get("TYPE", ""),
                f.get("LENGTH"),
                f.get("NOTNULL") == "true",
                f.get("SEQUENCE") == "true",
                f.get("DEFAULT"),
                f.get("DECIMALS"),
            )
            for f in element.iter("FIELD")
        )
        primary: tuple[str, ...] = ()
        unique_keys: list[tuple[str, ...]] = []
        indexes: list[tuple[tuple[str, ...], bool]] = []
        for key in element.iter("KEY"):
            columns = _names(key.get("FIELDS", ""))
            kind = key.get("TYPE")
            if kind == "primary":
                primary = columns
            elif kind == "unique":
                unique_keys.append(columns)
            elif kind in ("foreign", "foreign-unique"):
                indexes.append((columns, kind == "foreign-unique"))
        for index in element.iter("INDEX"):
            indexes.append((_names(index.get("FIELDS", "")), index.get("UNIQUE") == "true"))
        tables[element.get("NAME", "")] = Table(
            element.get("NAME", ""), fields, primary, tuple(unique_keys), tuple(indexes)
        )
    return tables


def _default(field: Field) -> sql.Composable | None:
    if field.sequence:
        return None
    if field.default is not None:
        if field.type in ("int", "number", "float"):
            return sql.SQL(str(float(field.default) if "." in field.default else int(field.default)))
        return sql.Literal(field.default)
    if field.not_null and field.type == "char":
        return sql.Literal("")
    return None


def table_ddl(table: Table, prefix: str = DEFAULT_PREFIX, schema: str | None = None) -> list[sql.Composed]:
    """CREATE TABLE and CREATE INDEX statements for one XMLDB table."""
    name = prefix + table.name
    qualified = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    columns: list[sql.Composable] = []
    for field in table.fields:
        parts: list[sql.Composable] = [sql.Identifier(field.name), sql.SQL(field.column_type())]
        default = _default(field)
        if default is not None:
            parts += [sql.SQL("DEFAULT"), default]
        if field.not_null and not field.sequence:
            parts.append(sql.SQL("NOT NULL"))
        columns.append(sql.SQL(" ").join(parts))
    if table.primary:
        columns.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, table.primary)))
        )
    for unique in table.unique_keys:
        columns.append(sql.SQL("UNIQUE ({})").format(sql.SQL(", ").join(map(sql.Identifier, unique))))
    statements = [sql.SQL("CREATE TABLE {} ({})").format(qualified, sql.SQL(", ").join(columns))]
    for number, (fields, unique) in enumerate(table.indexes):
        index_name = f"{name}_{number}_{'_'.join(fields)}_ix"[:63]
        statements.append(
            sql.SQL("CREATE {}INDEX {} ON {} ({})").format(
                sql.SQL("UNIQUE " if unique else ""),
                sql.Identifier(index_name),
                qualified,
                sql.SQL(", ").join(map(sql.Identifier, fields)),
            )
        )
    return statements


def create_tables(
    conn: object, prefix: str = DEFAULT_PREFIX, path: Path = INSTALL_XML, schema: str | None = None
) -> list[str]:
    """Create every table of the kept install.xml on a psycopg connection; returns the created table names."""
    created = []
    for table in read_schema(path).values():
        for statement in table_ddl(table, prefix, schema):
            conn.execute(statement)  # type: ignore[attr-defined]
        created.append(prefix + table.name)
    return created
