"""Reversible merges: a merge moves every row pointing to the absorbed person, recorded row by row.

A merge is non-destructive and recorded row by row in `ops.identity_merge_move`: the absorbed person gets
`merged_into`, its source identities and every row pointing to it move to the survivor (in the warehouse's
SECURITY DEFINER function `ops.merge_people`, so the dedupe's role needs no right on what it moves). `unmerge` puts
every recorded row back, returns rows that syncs attached to the survivor since then through the absorbed
person's source identities (`sql/dedupe/post_merge_lineage.sql`), and restores both person rows as they
were. Merges and unmerges are audit events.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdp import audit
from cdp.identity.errors import DedupeError
from cdp.identity.guards import GUARD_UNMERGED, low_high
from cdp.paths import SQL_DIR
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)


def sql_file(name: str) -> str:
    """A named query of the dedupe (`sql/dedupe/NAME`)."""
    return (SQL_DIR / "dedupe" / name).read_text()


@dataclass(frozen=True)
class PersonReference:
    """A column that points to core.person, with its table's primary key."""

    table: str
    column: str
    key_columns: tuple[str, ...]


def person_references(conn: psycopg.Connection) -> list[PersonReference]:
    """Every foreign key column in core that points to core.person, found in the catalog (so tables added
    by later migrations are covered without a change here)."""
    rows = conn.execute(sql_file("person_references.sql")).fetchall()
    references = []
    for row in rows:
        if not row["key_columns"]:
            raise DedupeError(f"{row['table_name']} has no primary key: its rows cannot be moved reversibly")
        references.append(PersonReference(row["table_name"], row["column_name"], tuple(row["key_columns"])))
    return references


#: Core columns pointing to core.person that no sync writes (merged_into is set by merges only; no stream
#: lands certificates yet), so no row can be attached to a survivor through an absorbed person's
#: identities: the rows a merge moved are all there is to put back. tests/identity/test_lineage.py checks
#: that no sync SQL writes them.
UNSYNCED_COLUMNS = frozenset({("core.person", "merged_into"), ("core.certificate", "person_id")})

_LINEAGE_BRANCH = re.compile(r"SELECT (?:DISTINCT )?'(core\.\w+)'(?: AS table_name)?,\s*'(\w+)'")


def lineage_columns() -> frozenset[tuple[str, str]]:
    """The (table, column) pairs that `sql/dedupe/post_merge_lineage.sql` has a branch for."""
    return frozenset(_LINEAGE_BRANCH.findall(sql_file("post_merge_lineage.sql")))


def uncovered_person_columns(conn: psycopg.Connection) -> list[str]:
    """Core columns holding a person id that an unmerge could not put back exactly: a foreign key to
    core.person with neither a lineage branch nor a place in `UNSYNCED_COLUMNS`, or a column named like
    a person id with no foreign key at all (a merge would not even move it)."""
    covered = lineage_columns() | UNSYNCED_COLUMNS
    problems = [
        f"{r.table}.{r.column}: no branch in post_merge_lineage.sql"
        for r in person_references(conn)
        if (r.table, r.column) not in covered
    ]
    unlinked = conn.execute(sql_file("unlinked_person_columns.sql")).fetchall()
    problems += [
        f"{r['table_name']}.{r['column_name']}: holds a person id without a foreign key" for r in unlinked
    ]
    return problems


def _table(name: str) -> sql.Composable:
    schema, table = name.split(".", 1)
    return sql.Identifier(schema, table)


def _person_image(conn: psycopg.Connection, person_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT to_jsonb(p) AS image FROM core.person p WHERE person_id = %s FOR UPDATE", (person_id,)
    ).fetchone()
    if row is None:
        raise DedupeError(f"person {person_id} does not exist")
    return row["image"]


def _key_match(reference: PersonReference) -> sql.Composable:
    """`pk1 = (row from jsonb).pk1 AND …` for a row key given as %(row_key)s."""
    record = sql.SQL("(jsonb_populate_record(NULL::{table}, %(row_key)s::jsonb))").format(
        table=_table(reference.table)
    )
    return sql.SQL(" AND ").join(
        sql.SQL("{table}.{column} = {record}.{column}").format(
            table=_table(reference.table), column=sql.Identifier(k), record=record
        )
        for k in reference.key_columns
    )


def merge_people(
    conn: psycopg.Connection,
    survivor: str,
    absorbed: str,
    *,
    reason: str,
    run_id: str | None = None,
    pair_id: int | None = None,
    score: float | None = None,
    merged_by: str | None = None,
) -> int:
    """Merge `absorbed` into `survivor` inside the caller's transaction; returns the merge id.

    The warehouse's `ops.merge_people` (sql/definitions/ops/merge_people.sql) does it: before-images, every
    row pointing to the absorbed person moved and recorded, `merged_into`, the pair, the audit event. It runs
    as its owner, so the dedupe's role moves consent statements and donations without any right to read them.
    """
    if survivor == absorbed:
        raise DedupeError("a person cannot be merged into itself")
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT ops.merge_people(%s, %s, %s, %s, %s, %s, %s) AS merge_id",
                (survivor, absorbed, reason, run_id, pair_id, score, merged_by),
            ).fetchone()
    except psycopg.errors.InvalidParameterValue as error:
        raise DedupeError(error.diag.message_primary or str(error)) from error
    return int(row["merge_id"] if isinstance(row, dict) else row[0])


@dataclass(frozen=True)
class UnmergeReport:
    merge_id: int
    survivor_id: str
    absorbed_id: str
    rows_restored: int
    rows_returned_after_merge: int
    rows_changed_since: int

    def summary(self) -> str:
        return (
            f"merge {self.merge_id} undone: {self.rows_restored} rows restored, "
            f"{self.rows_returned_after_merge} rows attached since the merge returned to the absorbed person"
            + (
                f", {self.rows_changed_since} rows changed since and left as they are"
                if self.rows_changed_since
                else ""
            )
        )


def _restore_person(conn: psycopg.Connection, image: dict[str, Any], columns: Sequence[str]) -> None:
    assignments = sql.SQL(", ").join(
        sql.SQL("{column} = r.{column}").format(column=sql.Identifier(c)) for c in columns
    )
    conn.execute(
        sql.SQL(
            "UPDATE core.person p SET {assignments}"
            " FROM jsonb_populate_record(NULL::core.person, %s::jsonb) r WHERE p.person_id = r.person_id"
        ).format(assignments=assignments),
        (json.dumps(image),),
    )


def unmerge(url: str, actor: Actor, merge_id: int, *, reason: str | None = None) -> UnmergeReport:
    """Undo one merge exactly; refuses when a later merge built on it is still in place."""
    with transaction(url, actor) as conn:
        merge = conn.execute(
            "SELECT * FROM ops.identity_merge WHERE merge_id = %s FOR UPDATE", (merge_id,)
        ).fetchone()
        if merge is None:
            raise DedupeError(f"merge {merge_id} does not exist")
        if merge["unmerged_at"] is not None:
            raise DedupeError(f"merge {merge_id} was already undone at {merge['unmerged_at']:%Y-%m-%d %H:%M}")
        survivor, absorbed = str(merge["survivor_id"]), str(merge["absorbed_id"])
        later = conn.execute(
            "SELECT merge_id FROM ops.identity_merge WHERE unmerged_at IS NULL AND merge_id > %s"
            " AND absorbed_id = %s ORDER BY merge_id DESC LIMIT 1",
            (merge_id, survivor),
        ).fetchone()
        if later is not None:
            raise DedupeError(
                f"merge {later['merge_id']} later merged the survivor of merge {merge_id} into another "
                f"person: undo merge {later['merge_id']} first"
            )
        _person_image(conn, survivor)  # lock both rows
        _person_image(conn, absorbed)
        references = {(r.table, r.column): r for r in person_references(conn)}
        moves = conn.execute(
            "SELECT table_name, column_name, row_key FROM ops.identity_merge_move WHERE merge_id = %s",
            (merge_id,),
        ).fetchall()
        identities = [move["row_key"] for move in moves if move["table_name"] == "core.person_source_id"]
        recorded = {
            (m["table_name"], m["column_name"], json.dumps(m["row_key"], sort_keys=True)) for m in moves
        }
        # Rows that syncs attached to the survivor since the merge through the absorbed person's identities.
        attached = [
            row
            for row in conn.execute(
                sql_file("post_merge_lineage.sql"),
                {"survivor": survivor, "identities": json.dumps(identities)},
            ).fetchall()
            if (row["table_name"], row["column_name"], json.dumps(row["row_key"], sort_keys=True))
            not in recorded
        ]
        restored = changed = returned = 0
        returned_by_column: dict[str, int] = {}
        for rows, counter in ((moves, "restored"), (attached, "returned")):
            for row in rows:
                reference = references.get((row["table_name"], row["column_name"]))
                if reference is None:
                    raise DedupeError(
                        f"{row['table_name']}.{row['column_name']} no longer points to core.person"
                    )
                done = conn.execute(
                    sql.SQL("UPDATE {table} SET {column} = %(a)s WHERE {column} = %(s)s AND {match}").format(
                        table=_table(reference.table),
                        column=sql.Identifier(reference.column),
                        match=_key_match(reference),
                    ),
                    {"a": absorbed, "s": survivor, "row_key": json.dumps(row["row_key"])},
                ).rowcount
                if counter == "restored":
                    restored += done
                    changed += 1 - done
                else:
                    returned += done
                    column = f"{reference.table}.{reference.column}"
                    returned_by_column[column] = returned_by_column.get(column, 0) + done
        person_columns = [
            row["column_name"]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'core'"
                " AND table_name = 'person' AND column_name <> 'person_id' ORDER BY ordinal_position"
            ).fetchall()
        ]
        # Both rows as they were: a sync since the merge may have written the absorbed person's values onto
        # the survivor; the next sync of the survivor's own records brings any newer value back.
        _restore_person(conn, merge["absorbed_before"], person_columns)
        _restore_person(conn, merge["survivor_before"], person_columns)
        details = {"restored": restored, "returned_after_merge": returned, "changed_since": changed,
                   "returned_by_column": returned_by_column, "reason": reason}  # fmt: skip
        conn.execute(
            "UPDATE ops.identity_merge SET unmerged_at = now(), unmerged_by = %s, unmerge_details = %s::jsonb"
            " WHERE merge_id = %s",
            (actor.name, json.dumps(details), merge_id),
        )
        # An undone merge is never redone automatically: the pair waits for a reviewer.
        low, high = low_high(survivor, absorbed)
        conn.execute(
            "UPDATE ops.identity_pair SET status = 'queued', auto_merge_allowed = false, guard = %s,"
            " merge_id = NULL, updated_at = now() WHERE person_low = %s AND person_high = %s",
            (GUARD_UNMERGED, low, high),
        )
        audit.record_event(
            conn,
            "unmerge",
            "core.person",
            absorbed,
            {"merge_id": merge_id, "survivor_id": survivor, "absorbed_id": absorbed, **details},
            before={"merged_into": survivor},
            after={"merged_into": None},
        )
    log.info(
        "unmerge %d: %d rows restored, %d returned, %d changed since", merge_id, restored, returned, changed
    )
    return UnmergeReport(merge_id, survivor, absorbed, restored, returned, changed)
