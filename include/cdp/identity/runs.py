"""Dedupe runs in the warehouse: plan, score, apply, finish.

A run is four steps, so that the DAG can spread the heavy one over workers:

1. `start_run` records the run in `ops.dedupe_run` and decides who is compared: in incremental mode the
   people created or changed since the last succeeded run (against everyone), in full mode everyone.
2. `score_shard` (one call per shard, a mapped task in the DAG) scores the pairs that involve its slice of
   the compared people and writes them to `ops.identity_pair_score`.
3. `apply_run` turns scored pairs into actions: reviewer decisions first (a pair rejected once is never
   proposed again; approved pairs are merged), then automatic merges of certain matches that no guard rail
   and no clustering rule holds back (`cdp.identity.guards`), then the review queue for everything else.
4. `finish_run` writes the counts and the duplicate rate, and flags a jump against recent runs.

Merges are reversible (`cdp.identity.merges`); reviewers decide queued pairs (`cdp.identity.review`).
"""

from __future__ import annotations

import io
import json
import logging
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from cdp import audit
from cdp.identity.config import MATCH, ResolveConfig
from cdp.identity.errors import DedupeError, DuplicateRateSpike
from cdp.identity.guards import (
    GUARD_TRANSITIVE,
    cluster_survivors,
    low_high,
    rejected,
    survivor_first,
    triage_pairs,
)
from cdp.identity.merges import merge_people, sql_file
from cdp.identity.resolve import resolve
from cdp.warehouse import Actor, connect, transaction

log = logging.getLogger(__name__)

FULL = "full"
INCREMENTAL = "incremental"

ENGINE_COLUMNS = ("id", "given_name", "family_name", "date_of_birth", "email", "phone", "street",
                  "locality", "postcode", "region")  # fmt: skip


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
    #: Pairs not proposed: relatives sharing a contact (see `cdp.identity.guards.relatives`).
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


# ------------------------------------------------------------------------------------------------ reading
def read_people(conn: psycopg.Connection, changed_since: Any) -> pd.DataFrame:
    """Every person not merged away, with `is_changed` for those created or changed since the time given."""
    buffer = io.BytesIO()
    since = changed_since if changed_since is not None else "-infinity"
    with conn.cursor().copy(sql_file("people_to_compare.sql"), (since, since)) as copy:
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
        low, high = low_high(str(values["id_l"]), str(values["id_r"]))
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
            sql_file("shard_scored.sql"),
            (shard, candidates, shard, round(time.perf_counter() - started, 3), run_id),
        )
    log.info(
        "dedupe shard %d: %d compared, %d candidate pairs, %d scored pairs kept, %.1f s",
        shard, len(mine), candidates, len(rows), time.perf_counter() - started,
    )  # fmt: skip
    return len(rows)


def _merged_members(conn: psycopg.Connection) -> dict[str, set[str]]:
    """For each person standing for others (a survivor), everyone merged into it, directly or not."""
    members: dict[str, set[str]] = {}
    for row in conn.execute(sql_file("merged_members.sql")).fetchall():
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


def _person_facts(conn: psycopg.Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT person_id::text AS id, household_id::text AS household_id, email_normalized AS email,"
        " coalesce(phone_e164, regexp_replace(phone, '[^0-9+]', '', 'g')) AS phone,"
        " lower(trim(given_name)) AS given, date_of_birth AS dob, created_at, is_learner,"
        " is_donor AND NOT is_learner AS donor_only, merged_into::text AS merged_into,"
        " (SELECT min(s.source || ':' || s.source_record_id) FROM core.person_source_id s"
        "  WHERE s.person_id = p.person_id) AS first_identity"
        " FROM core.person p WHERE person_id = ANY(%s::uuid[])",
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
            survivor, absorbed = survivor_first(facts, roots["low"], roots["high"])
            report.merge_ids.append(
                merge_people(conn, survivor, absorbed, reason="review", run_id=run_id,
                             pair_id=approved["pair_id"], score=approved["score"], merged_by=actor.name)
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
        triage = triage_pairs(scored, facts, known, members, rejections, settings.auto_merge_threshold)
        report.rejected += triage.rejected
        report.relatives += triage.relatives
        report.guarded += triage.guarded
        to_merge, to_queue = triage.to_merge, triage.to_queue
        survivor_of = cluster_survivors(to_merge, facts)
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
            if rejected(survivor, absorbed, members, rejections):
                _set_status(conn, pair_ids[(low, high)], "queued", "rejected_within_cluster")
                report.queued += 1
                continue
            report.merge_ids.append(
                merge_people(conn, survivor, absorbed, reason="auto", run_id=run_id,
                             pair_id=pair_ids[(low, high)], score=pair["score"], merged_by=actor.name)
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
            "UPDATE ops.dedupe_run SET candidate_pairs = %s, matches = %s, possible_matches = %s, merged = %s,"
            " queued = %s, rejected = %s, guarded = %s, details = details || %s::jsonb WHERE run_id = %s",
            (report.candidate_pairs, report.matches, report.possible_matches, report.merged, report.queued,
             report.rejected, report.guarded, json.dumps({"approved_merged": report.approved_merged,
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


def _upsert_pairs(
    conn: psycopg.Connection,
    run_id: str,
    pairs: Sequence[dict[str, Any]],
    known: dict[tuple[str, str], Any],
) -> dict[tuple[str, str], int]:
    ids: dict[tuple[str, str], int] = {}
    upsert = sql_file("upsert_pair.sql")
    for pair in pairs:
        row = conn.execute(
            upsert,
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
