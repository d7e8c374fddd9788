"""The engine wired to the warehouse: dedupe runs, the review queue, reversible merges.

A run is four steps, so that the DAG can spread the heavy one over workers:

1. `start_run` records the run in `ops.dedupe_run` and decides who is compared: in incremental mode the
   people created or changed since the last succeeded run (against everyone), in full mode everyone.
2. `score_shard` (one call per shard, a mapped task in the DAG) scores the pairs that involve its slice of
   the compared people and writes them to `ops.identity_pair_score`.
3. `apply_run` turns scored pairs into actions: reviewer decisions first (a pair rejected once is never
   proposed again; approved pairs are merged), then automatic merges of certain matches that no guard rail
   and no clustering rule holds back, then the review queue for everything else.
4. `finish_run` writes the counts and the duplicate rate, and flags a jump against recent runs.

A merge is non-destructive and recorded row by row in `ops.identity_merge_move`: the absorbed person gets
`merged_into`, its source identities and every row pointing to it move to the survivor. `unmerge` puts
every recorded row back, returns rows that syncs attached to the survivor since then through the absorbed
person's source identities (`sql/dedupe/post_merge_lineage.sql`), and restores both person rows as they
were. Merges, unmerges and decisions are audit events.
"""

from __future__ import annotations

import io
import json
import logging
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from cdp import audit
from cdp.identity.config import MATCH, ResolveConfig
from cdp.identity.model import GUARD_SHARED_CONTACT
from cdp.identity.resolve import resolve
from cdp.paths import SQL_DIR
from cdp.warehouse import Actor, connect, transaction

log = logging.getLogger(__name__)

FULL = "full"
INCREMENTAL = "incremental"
SAME = "same"
DIFFERENT = "different"

GUARD_TRANSITIVE = "transitive_only"
GUARD_UNMERGED = "merge_was_undone"
GUARD_DONOR_LEARNER_NAME_ONLY = "donor_vs_learner_name_only"
GUARD_BELOW_AUTO_MERGE = "below_auto_merge_threshold"
GUARD_CONTACT_ONLY = "name_and_contact_only"

#: Evidence other than the name, for the donor-versus-learner rule.
_CORROBORATING_LEVELS = ("date_of_birth", "email", "phone", "street", "postcode", "other_id")

PEOPLE_QUERY = """
COPY (
    SELECT p.person_id::text AS id, p.given_name, p.family_name, p.date_of_birth::text AS date_of_birth,
           coalesce(p.email_normalized, p.email) AS email, coalesce(p.phone_e164, p.phone) AS phone,
           h.street, h.locality, h.postcode, h.region,
           (p.created_at >= %s OR p.updated_at >= %s) AS is_changed
    FROM core.person p
    LEFT JOIN core.household h ON h.household_id = p.household_id
    WHERE p.merged_into IS NULL
    ORDER BY p.person_id  -- the model draws its random pairs by row position: the same people, the same scores
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""
ENGINE_COLUMNS = ("id", "given_name", "family_name", "date_of_birth", "email", "phone", "street",
                  "locality", "postcode", "region")  # fmt: skip


class DedupeError(RuntimeError):
    """A dedupe action that cannot be done as asked (the message says why)."""


class DuplicateRateSpike(RuntimeError):  # noqa: N818 - the alert's name in Slack
    """The run's duplicate rate jumped against recent runs: an import may have gone wrong."""


@dataclass(frozen=True)
class DedupeSettings:
    """The warehouse-side settings; the engine's own are in `ResolveConfig`. Fixed before any evaluation."""

    engine: ResolveConfig = field(default_factory=ResolveConfig)
    #: A `match` merges automatically only at or above this probability; the rest is reviewed.
    auto_merge_threshold: float = 0.99
    #: Compared people per scoring shard (one mapped task each).
    shard_size: int = 50_000
    #: Incremental runs look back this far before the last run's start, so a person written by a sync
    #: that committed only after that run had read the warehouse is still compared.
    incremental_overlap: timedelta = timedelta(hours=2)
    #: The duplicate rate is a spike when above factor x the median of the recent runs and at least
    #: `spike_min_increase` above it, once `spike_min_history` runs are known.
    spike_factor: float = 2.0
    spike_min_increase: float = 0.02
    spike_history: int = 10
    spike_min_history: int = 3


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    mode: str
    people_total: int
    people_compared: int
    shards: int


@dataclass
class ApplyReport:
    candidate_pairs: int = 0
    matches: int = 0
    possible_matches: int = 0
    merged: int = 0
    queued: int = 0
    rejected: int = 0
    guarded: int = 0
    approved_merged: int = 0
    #: Pairs not proposed: relatives sharing a contact (see `_relatives`).
    relatives: int = 0
    people_in_pairs: int = 0
    merge_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RunReport:
    run_id: str
    mode: str
    people_compared: int
    candidate_pairs: int
    merged: int
    queued: int
    rejected: int
    duplicate_rate: float
    baseline_rate: float | None
    rate_spike: bool

    def summary(self) -> str:
        baseline = "n/a" if self.baseline_rate is None else f"{self.baseline_rate:.2%}"
        return (
            f"dedupe {self.mode} run {self.run_id}: {self.people_compared} people compared, "
            f"{self.candidate_pairs} candidate pairs, {self.merged} merged, {self.queued} queued, "
            f"{self.rejected} rejected before; duplicate rate {self.duplicate_rate:.2%} (recent {baseline})"
            + (" SPIKE" if self.rate_spike else "")
        )


def _sql_file(name: str) -> str:
    return (SQL_DIR / "dedupe" / name).read_text()


def _low_high(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


# ------------------------------------------------------------------------------------------------ reading
def read_people(conn: psycopg.Connection, changed_since: Any) -> pd.DataFrame:
    """Every person not merged away, with `is_changed` for those created or changed since the time given."""
    buffer = io.BytesIO()
    since = changed_since if changed_since is not None else "-infinity"
    with conn.cursor().copy(PEOPLE_QUERY, (since, since)) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    people = pd.read_csv(buffer, dtype=str, keep_default_na=True)
    people["is_changed"] = people["is_changed"] == "t"
    return people


def _last_succeeded_start(conn: psycopg.Connection) -> Any:
    row = conn.execute(
        "SELECT max(started_at) AS started_at FROM ops.dedupe_run WHERE status = 'succeeded'"
    ).fetchone()
    return row["started_at"] if row else None


def _shard_of(people: pd.DataFrame, shards: int) -> np.ndarray:
    """A stable shard number per compared person (position in id order)."""
    order = np.argsort(people["id"].to_numpy())
    shard = np.empty(len(people), dtype=np.int64)
    shard[order] = np.arange(len(people)) % max(shards, 1)
    return shard


# ------------------------------------------------------------------------------------------------ step 1
def start_run(
    url: str, actor: Actor, run_id: str, *, full: bool = False, settings: DedupeSettings | None = None
) -> RunPlan:
    """Record a new run and decide who is compared; re-starting a failed run id starts it afresh."""
    settings = settings or DedupeSettings()
    with transaction(url, actor) as conn:
        existing = conn.execute("SELECT status FROM ops.dedupe_run WHERE run_id = %s", (run_id,)).fetchone()
        if existing and existing["status"] == "succeeded":
            raise DedupeError(f"dedupe run {run_id} already succeeded; start a new run id")
        conn.execute("DELETE FROM ops.dedupe_run WHERE run_id = %s", (run_id,))
        last_start = None if full else _last_succeeded_start(conn)
        since = None if last_start is None else last_start - settings.incremental_overlap
        mode = INCREMENTAL if since is not None else FULL
        total_row = conn.execute(
            "SELECT count(*) AS total, count(*) FILTER (WHERE created_at >= %(s)s OR updated_at >= %(s)s)"
            " AS changed FROM core.person WHERE merged_into IS NULL",
            {"s": since if since is not None else "-infinity"},
        ).fetchone()
        total, compared = int(total_row["total"]), int(total_row["changed"])
        shards = max(1, -(-compared // settings.shard_size))
        conn.execute(
            "INSERT INTO ops.dedupe_run (run_id, mode, changed_since, people_total, people_compared, shards)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (run_id, mode, since, total, compared, shards),
        )
    log.info("dedupe run planned: mode %s, %d people, %d compared, %d shards", mode, total, compared, shards)
    return RunPlan(run_id, mode, total, compared, shards)


# ------------------------------------------------------------------------------------------------ step 2
def score_shard(
    url: str, actor: Actor, run_id: str, shard: int, *, settings: DedupeSettings | None = None
) -> int:
    """Score every candidate pair involving this shard's compared people; returns the pairs written."""
    settings = settings or DedupeSettings()
    started = time.perf_counter()
    with connect(url, actor) as conn:
        run = conn.execute(
            "SELECT mode, changed_since, shards, status FROM ops.dedupe_run WHERE run_id = %s", (run_id,)
        ).fetchone()
        if run is None or run["status"] != "running":
            raise DedupeError(f"dedupe run {run_id} is not running")
        people = read_people(conn, run["changed_since"])
    compared = people[people["is_changed"]]
    mine = compared[_shard_of(compared, run["shards"]) == shard]
    if mine.empty:
        pairs = pd.DataFrame(columns=["id_l", "id_r", "score", "match_weight", "class", "guard"])
        candidates = 0
    else:
        engine_columns = list(ENGINE_COLUMNS)
        if len(mine) == len(people):
            pairs = resolve(people[engine_columns], config=settings.engine)
        else:
            others = people[~people["id"].isin(mine["id"])]
            pairs = resolve(mine[engine_columns], existing=others[engine_columns], config=settings.engine)
        candidates = int(pairs.attrs["candidate_pairs"])
    level_columns = [column for column in pairs.columns if column.endswith("_level")]
    # A pair of two compared people in different shards is found by both: the shard of its first person
    # keeps it.
    shard_of = dict(zip(compared["id"], _shard_of(compared, run["shards"]), strict=True))
    rows = []
    for values in pairs.to_dict("records"):
        low, high = _low_high(str(values["id_l"]), str(values["id_r"]))
        if shard_of.get(low, shard) != shard:
            continue
        levels = {column[: -len("_level")]: int(values[column]) for column in level_columns}
        rows.append(
            (run_id, low, high, shard, float(values["score"]), float(values["match_weight"]),
             values["class"], values["guard"], json.dumps(levels))
        )  # fmt: skip
    with transaction(url, actor) as conn:
        conn.execute("DELETE FROM ops.identity_pair_score WHERE run_id = %s AND shard = %s", (run_id, shard))
        with conn.cursor().copy(
            "COPY ops.identity_pair_score (run_id, person_low, person_high, shard, score, match_weight,"
            " class, guard, levels) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(
            "UPDATE ops.dedupe_run SET details = jsonb_set(jsonb_set(details, '{shard_candidates}',"
            " coalesce(details -> 'shard_candidates', '{}'::jsonb) || jsonb_build_object(%s::text, %s::bigint)),"
            " '{shard_seconds}', coalesce(details -> 'shard_seconds', '{}'::jsonb)"
            " || jsonb_build_object(%s::text, %s::float)) WHERE run_id = %s",
            (shard, candidates, shard, round(time.perf_counter() - started, 3), run_id),
        )
    log.info(
        "dedupe shard %d: %d compared, %d candidate pairs, %d scored pairs kept, %.1f s",
        shard, len(mine), candidates, len(rows), time.perf_counter() - started,
    )  # fmt: skip
    return len(rows)


# ------------------------------------------------------------------------------------------------ merges
@dataclass(frozen=True)
class PersonReference:
    """A column that points to core.person, with its table's primary key."""

    table: str
    column: str
    key_columns: tuple[str, ...]


def person_references(conn: psycopg.Connection) -> list[PersonReference]:
    """Every foreign key column in core that points to core.person, found in the catalog (so tables added
    by later migrations are covered without a change here)."""
    rows = conn.execute(
        """
        SELECT c.conrelid::regclass::text AS table_name, a.attname AS column_name,
               (SELECT array_agg(k.attname ORDER BY k.attnum) FROM pg_constraint pk
                JOIN pg_attribute k ON k.attrelid = pk.conrelid AND k.attnum = ANY (pk.conkey)
                WHERE pk.conrelid = c.conrelid AND pk.contype = 'p') AS key_columns
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_namespace n ON n.oid = (SELECT relnamespace FROM pg_class WHERE oid = c.conrelid)
        WHERE c.contype = 'f' AND c.confrelid = 'core.person'::regclass AND n.nspname = 'core'
          AND array_length(c.conkey, 1) = 1
        ORDER BY 1, 2
        """
    ).fetchall()
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
    return frozenset(_LINEAGE_BRANCH.findall(_sql_file("post_merge_lineage.sql")))


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
    unlinked = conn.execute(
        """
        SELECT c.table_schema || '.' || c.table_name AS table_name, c.column_name
        FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE c.table_schema = 'core' AND t.table_type = 'BASE TABLE' AND c.data_type = 'uuid'
          AND (c.column_name LIKE '%%person_id' OR c.column_name = 'merged_into')
          AND (c.table_name, c.column_name) <> ('person', 'person_id')
          AND NOT EXISTS (
              SELECT 1 FROM pg_constraint f
              JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]
              WHERE f.contype = 'f' AND f.confrelid = 'core.person'::regclass
                AND f.conrelid = (c.table_schema || '.' || c.table_name)::regclass AND a.attname = c.column_name)
        ORDER BY 1, 2
        """
    ).fetchall()
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


def _move_rows(
    conn: psycopg.Connection, merge_id: int, reference: PersonReference, absorbed: str, survivor: str
) -> tuple[int, int]:
    """Re-point one column from absorbed to survivor, recording each row; rows whose move would break a
    unique key (the survivor already has the same membership) stay on the absorbed person."""
    key = sql.SQL("jsonb_build_object({})").format(
        sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(k), sql.Identifier(k)) for k in reference.key_columns
        )
    )
    params = {"merge_id": merge_id, "t": reference.table, "c": reference.column, "a": absorbed, "s": survivor}
    statement = sql.SQL(
        "WITH moved AS (UPDATE {table} SET {column} = %(s)s WHERE {column} = %(a)s RETURNING {key} AS row_key)"
        " INSERT INTO ops.identity_merge_move (merge_id, table_name, column_name, row_key, old_person_id,"
        " new_person_id) SELECT %(merge_id)s, %(t)s, %(c)s, row_key, %(a)s, %(s)s FROM moved"
    ).format(table=_table(reference.table), column=sql.Identifier(reference.column), key=key)
    try:
        with conn.transaction():
            moved = conn.execute(statement, params).rowcount
        return moved, 0
    except psycopg.errors.UniqueViolation:
        pass
    keys = [
        row["row_key"]
        for row in conn.execute(
            sql.SQL("SELECT {key} AS row_key FROM {table} WHERE {column} = %(a)s").format(
                key=key, table=_table(reference.table), column=sql.Identifier(reference.column)
            ),
            params,
        ).fetchall()
    ]
    moved = kept = 0
    one_row = sql.SQL(
        "WITH moved AS (UPDATE {table} SET {column} = %(s)s WHERE {column} = %(a)s AND {match}"
        " RETURNING {key} AS row_key)"
        " INSERT INTO ops.identity_merge_move (merge_id, table_name, column_name, row_key, old_person_id,"
        " new_person_id) SELECT %(merge_id)s, %(t)s, %(c)s, row_key, %(a)s, %(s)s FROM moved"
    ).format(
        table=_table(reference.table),
        column=sql.Identifier(reference.column),
        key=key,
        match=_key_match(reference),
    )
    for row_key in keys:
        try:
            with conn.transaction():
                conn.execute(one_row, {**params, "row_key": json.dumps(row_key)})
            moved += 1
        except psycopg.errors.UniqueViolation:
            kept += 1
    return moved, kept


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
    references: Sequence[PersonReference] | None = None,
) -> int:
    """Merge `absorbed` into `survivor` inside the caller's transaction; returns the merge id."""
    if survivor == absorbed:
        raise DedupeError("a person cannot be merged into itself")
    survivor_before = _person_image(conn, survivor)
    absorbed_before = _person_image(conn, absorbed)
    for image in (survivor_before, absorbed_before):
        if image["merged_into"] is not None:
            raise DedupeError(f"person {image['person_id']} is already merged into another person")
    merge_id = conn.execute(
        "INSERT INTO ops.identity_merge (run_id, pair_id, survivor_id, absorbed_id, reason, score, merged_by,"
        " survivor_before, absorbed_before) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)"
        " RETURNING merge_id",
        (run_id, pair_id, survivor, absorbed, reason, score, merged_by,
         json.dumps(survivor_before), json.dumps(absorbed_before)),
    ).fetchone()["merge_id"]  # fmt: skip
    moved: dict[str, int] = {}
    kept: dict[str, int] = {}
    for reference in references if references is not None else person_references(conn):
        count, left = _move_rows(conn, merge_id, reference, absorbed, survivor)
        if count:
            moved[f"{reference.table}.{reference.column}"] = count
        if left:
            kept[f"{reference.table}.{reference.column}"] = left
    conn.execute("UPDATE core.person SET merged_into = %s WHERE person_id = %s", (survivor, absorbed))
    if pair_id is not None:
        conn.execute(
            "UPDATE ops.identity_pair SET status = 'merged', merge_id = %s, updated_at = now() WHERE pair_id = %s",
            (merge_id, pair_id),
        )
    audit.record_event(
        conn,
        "merge",
        "core.person",
        absorbed,
        {"merge_id": merge_id, "survivor_id": survivor, "absorbed_id": absorbed, "reason": reason,
         "score": score, "pair_id": pair_id, "run_id": run_id, "rows_moved": moved,
         "rows_left_on_absorbed": kept},
        before={"merged_into": None},
        after={"merged_into": survivor},
    )  # fmt: skip
    return int(merge_id)


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
                _sql_file("post_merge_lineage.sql"),
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
        low, high = _low_high(survivor, absorbed)
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


# ------------------------------------------------------------------------------------------------ step 3
class _Clusters:
    """Union-find over person ids."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _merged_members(conn: psycopg.Connection) -> dict[str, set[str]]:
    """For each person standing for others (a survivor), everyone merged into it, directly or not."""
    members: dict[str, set[str]] = {}
    for row in conn.execute(
        "WITH RECURSIVE chain AS ("
        "  SELECT person_id, merged_into AS root FROM core.person WHERE merged_into IS NOT NULL"
        "  UNION ALL SELECT c.person_id, p.merged_into FROM chain c"
        "  JOIN core.person p ON p.person_id = c.root WHERE p.merged_into IS NOT NULL"
        ") SELECT person_id::text AS person_id, root::text AS root FROM chain"
    ).fetchall():
        members.setdefault(row["root"], set()).add(row["person_id"])
    return members


def _rejections(conn: psycopg.Connection) -> set[tuple[str, str]]:
    return {
        (row["low"], row["high"])
        for row in conn.execute(
            "SELECT person_low::text AS low, person_high::text AS high FROM ops.identity_decision"
            " WHERE decision = 'different'"
        ).fetchall()
    }


def _rejected(a: str, b: str, members: dict[str, set[str]], rejections: set[tuple[str, str]]) -> bool:
    """A reviewer said some record of a's merged set is not the same person as some record of b's."""
    if not rejections:
        return False
    side_a = members.get(a, set()) | {a}
    side_b = members.get(b, set()) | {b}
    return any(_low_high(x, y) in rejections for x in side_a for y in side_b)


def _shares_contact(pair: dict[str, Any], facts: dict[str, dict[str, Any]]) -> bool:
    left, right = facts[pair["person_low"]], facts[pair["person_high"]]
    levels = pair["levels"]
    return (
        levels.get("email", -1) == 1
        or levels.get("phone", -1) == 1
        or any(
            left[key] is not None and left[key] == right[key] for key in ("household_id", "email", "phone")
        )
    )


def _relatives(pair: dict[str, Any], facts: dict[str, dict[str, Any]]) -> bool:
    """A shared email, phone or household, given names with nothing in common (not similar, not a
    nickname, not swapped) and no agreeing birth date: family members, not a duplicate to review."""
    levels = pair["levels"]
    return (
        _shares_contact(pair, facts)
        and levels.get("given_name", -1) == 0
        and levels.get("date_of_birth", -1) <= 0
    )


def _contact_guard(pair: dict[str, Any], facts: dict[str, dict[str, Any]]) -> str | None:
    """Warehouse guard rails on top of the engine's, for pairs the engine calls `match`."""
    left, right = facts[pair["person_low"]], facts[pair["person_high"]]
    levels = pair["levels"]
    # Shared household/email/phone with a different given name or birth date: never automatic. Different
    # means below the engine's "similar" level: a typo, an accent, a nickname or swapped day and month
    # are the same name or date.
    given_differs = levels.get("given_name", -1) < 2
    dob_differs = levels.get("date_of_birth", -1) in (0, 1)
    if _shares_contact(pair, facts) and (given_differs or dob_differs):
        return GUARD_SHARED_CONTACT
    # A donor who never enrolled against a learner with nothing but the name in common.
    donor_vs_learner = (left["donor_only"] and right["is_learner"]) or (
        right["donor_only"] and left["is_learner"]
    )
    if donor_vs_learner and not any(levels.get(name, -1) >= 1 for name in _CORROBORATING_LEVELS):
        return GUARD_DONOR_LEARNER_NAME_ONLY
    # A name plus a shared email or phone is what relatives named after each other also have: without an
    # agreeing birth date, address or id it is not certain.
    if not any(levels.get(name, -1) >= 2 for name in ("date_of_birth", "street", "postcode", "other_id")):
        return GUARD_CONTACT_ONLY
    return None


def _person_facts(conn: psycopg.Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT person_id::text AS id, household_id::text AS household_id, email_normalized AS email,"
        " coalesce(phone_e164, regexp_replace(phone, '[^0-9+]', '', 'g')) AS phone,"
        " lower(trim(given_name)) AS given, date_of_birth AS dob, created_at, is_learner,"
        " is_donor AND NOT is_learner AS donor_only, merged_into::text AS merged_into"
        " FROM core.person WHERE person_id = ANY(%s::uuid[])",
        (list(ids),),
    ).fetchall()
    return {row["id"]: row for row in rows}


def apply_run(url: str, actor: Actor, run_id: str, *, settings: DedupeSettings | None = None) -> ApplyReport:
    """Decisions, merges and the review queue from this run's scored pairs, in one transaction."""
    settings = settings or DedupeSettings()
    report = ApplyReport()
    with transaction(url, actor) as conn:
        run = conn.execute(
            "SELECT status, shards, details FROM ops.dedupe_run WHERE run_id = %s FOR UPDATE", (run_id,)
        ).fetchone()
        if run is None or run["status"] != "running":
            raise DedupeError(f"dedupe run {run_id} is not running")
        done = run["details"].get("shard_candidates", {})
        missing = [shard for shard in range(run["shards"]) if str(shard) not in done]
        if missing:
            raise DedupeError(f"dedupe run {run_id}: shards {missing} have not been scored")
        report.candidate_pairs = sum(int(count) for count in done.values())
        references = person_references(conn)
        # Reviewer approvals since the last run are merged first (reason 'review').
        for approved in conn.execute(
            "SELECT pair_id, person_low::text AS low, person_high::text AS high, score FROM ops.identity_pair"
            " WHERE status = 'approved' ORDER BY pair_id"
        ).fetchall():
            # Either side may have been merged since it was queued: merge the people they now stand as.
            roots = conn.execute(
                "SELECT ops.person_root(%s)::text AS low, ops.person_root(%s)::text AS high",
                (approved["low"], approved["high"]),
            ).fetchone()
            if roots["low"] == roots["high"]:
                _set_status(conn, approved["pair_id"], "merged", None)
                continue
            facts = _person_facts(conn, (roots["low"], roots["high"]))
            survivor, absorbed = _survivor_first(facts, roots["low"], roots["high"])
            report.merge_ids.append(
                merge_people(conn, survivor, absorbed, reason="review", run_id=run_id,
                             pair_id=approved["pair_id"], score=approved["score"], merged_by=actor.name,
                             references=references)
            )  # fmt: skip
            report.approved_merged += 1

        scored = [
            {**row, "person_low": str(row["person_low"]), "person_high": str(row["person_high"])}
            for row in conn.execute(
                "SELECT person_low, person_high, score, match_weight, class, guard, levels"
                " FROM ops.identity_pair_score WHERE run_id = %s AND class <> 'non_match' ORDER BY score DESC",
                (run_id,),
            ).fetchall()
        ]
        report.matches = sum(1 for p in scored if p["class"] == MATCH)
        report.possible_matches = len(scored) - report.matches
        facts = _person_facts(conn, {p["person_low"] for p in scored} | {p["person_high"] for p in scored})
        members = _merged_members(conn)
        rejections = _rejections(conn)
        known = {
            (str(row["person_low"]), str(row["person_high"])): row
            for row in conn.execute(
                "SELECT pair_id, person_low, person_high, status, auto_merge_allowed FROM ops.identity_pair"
                " WHERE person_low = ANY(%s::uuid[]) OR person_high = ANY(%s::uuid[])",
                (list(facts), list(facts)),
            ).fetchall()
        }
        to_merge: list[dict[str, Any]] = []
        to_queue: list[dict[str, Any]] = []
        for pair in scored:
            key = (pair["person_low"], pair["person_high"])
            previous = known.get(key)
            if previous is not None and previous["status"] in ("rejected", "merged", "approved"):
                report.rejected += previous["status"] == "rejected"
                continue
            if _rejected(*key, members, rejections):
                report.rejected += 1
                continue
            if any(facts[p]["merged_into"] for p in key):
                continue  # one side was merged by an approval above
            if _relatives(pair, facts):
                report.relatives += 1
                continue
            guard = pair["guard"]
            if pair["class"] == MATCH:
                guard = guard or _contact_guard(pair, facts)
                if guard is None and pair["score"] < settings.auto_merge_threshold:
                    guard = GUARD_BELOW_AUTO_MERGE
                if guard is None and previous is not None and not previous["auto_merge_allowed"]:
                    guard = GUARD_UNMERGED
                if guard is None:
                    to_merge.append(pair)
                    continue
                report.guarded += 1
            to_queue.append({**pair, "guard": guard})

        # Clusters: merge a member only into the cluster's survivor and only over a direct match with it,
        # so a chain A~B~C never merges A and C on the strength of B alone.
        clusters = _Clusters()
        for pair in to_merge:
            clusters.union(pair["person_low"], pair["person_high"])
        groups: dict[str, list[str]] = {}
        for person in {p for pair in to_merge for p in (pair["person_low"], pair["person_high"])}:
            groups.setdefault(clusters.find(person), []).append(person)
        survivor_of = {
            person: min(group, key=lambda p: (facts[p]["created_at"], p))
            for group in groups.values()
            for person in group
        }
        pair_ids = _upsert_pairs(conn, run_id, to_merge + to_queue, known)
        for pair in to_merge:
            low, high = pair["person_low"], pair["person_high"]
            survivor = survivor_of[low]
            if survivor not in (low, high):
                report.guarded += 1
                _set_status(conn, pair_ids[(low, high)], "queued", GUARD_TRANSITIVE)
                report.queued += 1
                continue
            absorbed = high if survivor == low else low
            if _rejected(survivor, absorbed, members, rejections):
                _set_status(conn, pair_ids[(low, high)], "queued", "rejected_within_cluster")
                report.queued += 1
                continue
            report.merge_ids.append(
                merge_people(conn, survivor, absorbed, reason="auto", run_id=run_id,
                             pair_id=pair_ids[(low, high)], score=pair["score"], merged_by=actor.name,
                             references=references)
            )  # fmt: skip
            members.setdefault(survivor, set()).update({absorbed} | members.pop(absorbed, set()))
        for pair in to_queue:
            _set_status(conn, pair_ids[(pair["person_low"], pair["person_high"])], "queued", pair["guard"])
            report.queued += 1
        report.merged = len(report.merge_ids)
        report.people_in_pairs = len(
            {p for pair in to_merge + to_queue for p in (pair["person_low"], pair["person_high"])}
        )
        conn.execute(
            "UPDATE ops.dedupe_run SET candidate_pairs = %s, matches = %s, possible_matches = %s, merged = %s, queued = %s,"
            " rejected = %s, guarded = %s, details = details || %s::jsonb WHERE run_id = %s",
            (report.candidate_pairs, report.matches, report.possible_matches, report.merged, report.queued, report.rejected,
             report.guarded, json.dumps({"approved_merged": report.approved_merged,
                                         "people_in_pairs": report.people_in_pairs,
                                         "relatives_not_proposed": report.relatives}), run_id),
        )  # fmt: skip
    log.info(
        "dedupe apply: %d match, %d possible, %d merged (%d approved by reviewers), %d queued, %d rejected before,"
        " %d held back",
        report.matches, report.possible_matches, report.merged, report.approved_merged, report.queued,
        report.rejected, report.guarded,
    )  # fmt: skip
    return report


def _survivor_first(facts: dict[str, dict[str, Any]], a: str, b: str) -> tuple[str, str]:
    """The older person record survives (its id is the one other systems have seen longest)."""
    first, second = sorted((a, b), key=lambda p: (facts[p]["created_at"], p))
    return first, second


def _upsert_pairs(
    conn: psycopg.Connection,
    run_id: str,
    pairs: Sequence[dict[str, Any]],
    known: dict[tuple[str, str], Any],
) -> dict[tuple[str, str], int]:
    ids: dict[tuple[str, str], int] = {}
    for pair in pairs:
        row = conn.execute(
            "INSERT INTO ops.identity_pair (person_low, person_high, first_run_id, last_run_id, score,"
            " match_weight, class, guard, levels, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb,"
            " 'queued') ON CONFLICT (person_low, person_high) DO UPDATE SET last_run_id = excluded.last_run_id,"
            " score = excluded.score, match_weight = excluded.match_weight, class = excluded.class,"
            " levels = excluded.levels, updated_at = now() RETURNING pair_id",
            (pair["person_low"], pair["person_high"], run_id, run_id, pair["score"], pair["match_weight"],
             pair["class"], pair["guard"], json.dumps(pair["levels"])),
        ).fetchone()  # fmt: skip
        ids[(pair["person_low"], pair["person_high"])] = int(row["pair_id"])
    return ids


def _set_status(conn: psycopg.Connection, pair_id: int, status: str, guard: str | None) -> None:
    conn.execute(
        "UPDATE ops.identity_pair SET status = %s, guard = coalesce(%s, guard), updated_at = now()"
        " WHERE pair_id = %s",
        (status, guard, pair_id),
    )


# ------------------------------------------------------------------------------------------------ step 4
def finish_run(url: str, actor: Actor, run_id: str, *, settings: DedupeSettings | None = None) -> RunReport:
    """Close the run with its duplicate rate, compared with the median of recent succeeded runs."""
    settings = settings or DedupeSettings()
    with transaction(url, actor) as conn:
        run = conn.execute("SELECT * FROM ops.dedupe_run WHERE run_id = %s FOR UPDATE", (run_id,)).fetchone()
        if run is None or run["status"] != "running":
            raise DedupeError(f"dedupe run {run_id} is not running")
        compared = int(run["people_compared"])
        in_pairs = int(run["details"].get("people_in_pairs", 0))
        rate = min(in_pairs / compared, 1.0) if compared else 0.0
        history = [
            float(row["duplicate_rate"])
            for row in conn.execute(
                "SELECT duplicate_rate FROM ops.dedupe_run WHERE status = 'succeeded'"
                " AND duplicate_rate IS NOT NULL AND people_compared > 0 ORDER BY started_at DESC LIMIT %s",
                (settings.spike_history,),
            ).fetchall()
        ]
        baseline = statistics.median(history) if history else None
        spike = (
            baseline is not None
            and len(history) >= settings.spike_min_history
            and compared > 0
            and rate > baseline * settings.spike_factor
            and rate - baseline >= settings.spike_min_increase
        )
        conn.execute(
            "UPDATE ops.dedupe_run SET status = 'succeeded', finished_at = now(), duplicate_rate = %s,"
            " baseline_rate = %s, rate_spike = %s WHERE run_id = %s",
            (rate, baseline, spike, run_id),
        )
        report = RunReport(
            run_id, run["mode"], compared, int(run["candidate_pairs"]), int(run["merged"]), int(run["queued"]),
            int(run["rejected"]), rate, baseline, bool(spike),
        )  # fmt: skip
        audit.record_event(conn, "dedupe_run", "ops.dedupe_run", run_id, asdict(report))
    log.info(report.summary())
    return report


def fail_run(url: str, actor: Actor, run_id: str, error: str) -> None:
    with transaction(url, actor) as conn:
        conn.execute(
            "UPDATE ops.dedupe_run SET status = 'failed', finished_at = now(),"
            " details = details || jsonb_build_object('error', %s::text) WHERE run_id = %s AND status = 'running'",
            (error[:500], run_id),
        )


def raise_on_spike(url: str, run_id: str) -> None:
    """Fail (and so alert) when the finished run flagged a jump in its duplicate rate."""
    with connect(url, Actor("dedupe:check")) as conn:
        run = conn.execute(
            "SELECT status, duplicate_rate, baseline_rate, rate_spike FROM ops.dedupe_run WHERE run_id = %s",
            (run_id,),
        ).fetchone()
    if run is None or run["status"] != "succeeded":
        raise DedupeError(f"dedupe run {run_id} has not finished")
    if run["rate_spike"]:
        raise DuplicateRateSpike(
            f"duplicate rate {run['duplicate_rate']:.2%} against {run['baseline_rate']:.2%} in recent runs:"
            " check the latest imports; merges can be undone with `cdp dedupe unmerge MERGE_ID`"
        )


def run_dedupe(
    url: str, actor: Actor, run_id: str, *, full: bool = False, settings: DedupeSettings | None = None
) -> RunReport:
    """All four steps in this process (the CLI; the DAG runs them as separate, mapped tasks)."""
    settings = settings or DedupeSettings()
    plan = start_run(url, actor, run_id, full=full, settings=settings)
    try:
        for shard in range(plan.shards):
            score_shard(url, actor, run_id, shard, settings=settings)
        apply_run(url, actor, run_id, settings=settings)
        return finish_run(url, actor, run_id, settings=settings)
    except Exception as error:
        fail_run(url, actor, run_id, type(error).__name__)
        raise


# ------------------------------------------------------------------------------------------------ review
def review_queue(conn: psycopg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM ops.identity_review_queue ORDER BY score DESC, pair_id LIMIT %s", (limit,)
    ).fetchall()


def decide(
    url: str, actor: Actor, pair_id: int, decision: str, reviewer: str, note: str | None = None
) -> int:
    """Record a reviewer's decision; 'different' is final, 'same' is merged by the next run."""
    if decision not in (SAME, DIFFERENT):
        raise DedupeError(f"decision must be {SAME!r} or {DIFFERENT!r}, not {decision!r}")
    if not reviewer or not reviewer.strip():
        raise DedupeError("a decision needs the reviewer's name")
    with transaction(url, actor) as conn:
        pair = conn.execute(
            "SELECT pair_id, person_low, person_high, status FROM ops.identity_pair WHERE pair_id = %s",
            (pair_id,),
        ).fetchone()
        if pair is None:
            raise DedupeError(f"pair {pair_id} is not in the review queue")
        if pair["status"] != "queued":
            raise DedupeError(f"pair {pair_id} is {pair['status']}, not awaiting review")
        decision_id = conn.execute(
            "INSERT INTO ops.identity_decision (pair_id, person_low, person_high, decision, reviewer, note)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING decision_id",
            (pair_id, pair["person_low"], pair["person_high"], decision, reviewer.strip(), note),
        ).fetchone()["decision_id"]
        # The insert trigger moves the pair out of the queue, or refuses when someone decided it meanwhile.
        status = "approved" if decision == SAME else "rejected"
        audit.record_event(
            conn,
            "review_decision",
            "ops.identity_pair",
            str(pair_id),
            {"decision_id": decision_id, "decision": decision, "reviewer": reviewer.strip(),
             "person_low": str(pair["person_low"]), "person_high": str(pair["person_high"])},
            before={"status": pair["status"]},
            after={"status": status},
        )  # fmt: skip
    return int(decision_id)
