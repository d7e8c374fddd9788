"""The finance streams from the sandbox: Stripe refunds and balance transactions, and the ledger drop.

Counts and money per currency equal the generator's truth to the cent, the ledger matches
``ledger_truth()``, planted malformed records wait in the quarantine with their reason, an orphan (a
refund whose charge has not landed) is re-tried once its parent arrives, and a re-run changes nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from support import snapshot

from cdp.sources import registry
from cdp.sources import validation as v
from cdp.sources.ledger.specs import ledger_sign
from cdp.sources.stripe.specs import net_of_fee
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import SPECS, spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
# What each planted fault must be called in the quarantine (the generator's reason -> words in ours).
REASON_WORDS = {
    "missing_required": ("missing required",),
    "negative_amount": ("negative amount", "wrong sign"),
    "non_numeric_amount": ("non-numeric",),
    "unknown_currency": ("unknown currency",),
    "unknown_enum": ("unknown value",),
    "impossible_date": ("impossible date",),
    "malformed_email": ("malformed email",),
}
FINANCE = ("stripe.charges", "stripe.refunds", "stripe.balance_transactions", "ledger.postings")
SNAPSHOT_TABLES = ("core.person", "core.household", "core.organization", "core.organization_membership",
                   "core.crm_account_contact", "core.donation", "core.donation_soft_credit", "core.refund",
                   "core.balance_transaction", "core.ledger_posting", "raw.records", "ops.quarantine")  # fmt: skip


@pytest.fixture(scope="module")
def world() -> World:
    # Denser faults than the default 0.5%, so every stream has planted faults and orphans to find.
    return World(seed=13, learners=250, donations=1200, malformed_rate=0.03)


@pytest.fixture
def sandbox(world: World, tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as server:
        yield server


def sync(
    url: str, sandbox: SandboxServer, key: str, run: str = "run-1", end: datetime | None = None
) -> SyncResult:
    spec = spec_for(*key.split("."))
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    return sync_stream(
        url, stream, spec, actor=ACTOR, run_id=run, interval_end=end or datetime.now(UTC)
    )  # fmt: skip


def quarantined(conn: psycopg.Connection, key: str, *, open_only: bool = True) -> dict[str, str]:
    source, stream = key.split(".")
    rows = conn.execute(
        "SELECT source_record_id, reason FROM ops.quarantine WHERE source = %s AND stream = %s"
        + (" AND resolved_at IS NULL" if open_only else ""),
        (source, stream),
    ).fetchall()
    return dict(rows)


def assert_planted_faults_quarantined(conn: psycopg.Connection, world: World, key: str) -> dict[str, str]:
    """Every malformed record is in the quarantine, named for what is wrong with it; returns the rest."""
    source, stream = key.split(".")
    planted = world.truth.malformed(source, stream)
    assert planted, f"the generator planted no faults in {key}: the test would prove nothing"
    waiting = quarantined(conn, key)
    for record_id, fault in planted.items():
        reason = waiting.get(str(record_id))
        assert reason is not None, f"{key} {record_id} ({fault}) was not quarantined"
        assert any(word in reason for word in REASON_WORDS[fault]), (key, fault, reason)
    return {rid: reason for rid, reason in waiting.items() if rid not in {str(r) for r in planted}}


class Expected:
    """What a correct sync lands, derived from the generator's records and its list of planted faults."""

    def __init__(self, world: World) -> None:
        bad = {key: {str(i) for i in world.truth.malformed(*key.split("."))} for key in FINANCE}
        # Which charges land is the charges stream's business (tested in test_engine.py); its email check
        # lets one kind of planted address through ("first,last@example.org"), so ask that check.
        charge_check = spec_for("stripe", "charges").check
        self.charges = {c["id"]: c for c in world.records("stripe", "charges") if charge_check(c) is None}
        refunds = list(world.records("stripe", "refunds"))
        self.refunds = {
            r["id"]: r
            for r in refunds
            if r["id"] not in bad["stripe.refunds"] and r["charge"] in self.charges
        }
        self.orphan_refunds = {
            r["id"]
            for r in refunds
            if r["id"] not in bad["stripe.refunds"] and r["charge"] not in self.charges
        }
        ftid_of = {cid: cid for cid in self.charges}  # a gift is keyed by its charge id
        ftid_of |= {rid: ftid_of[r["charge"]] for rid, r in self.refunds.items()}
        self.balance = {}
        self.orphan_balance = set()
        for txn in world.records("stripe", "balance_transactions"):
            if txn["id"] in bad["stripe.balance_transactions"]:
                continue
            if txn["source"] in ftid_of:
                self.balance[txn["id"]] = {**txn, "ftid": ftid_of[txn["source"]]}
            else:
                self.orphan_balance.add(txn["id"])
        self.ledger = [
            p for p in world.records("ledger", "postings") if p["reference"] not in bad["ledger.postings"]
        ]
        self.ledger_bad = [
            p for p in world.records("ledger", "postings") if p["reference"] in bad["ledger.postings"]
        ]

    @staticmethod
    def per_currency(records, amount: str = "amount") -> dict[str, int]:
        totals: Counter[str] = Counter()
        for record in records:
            totals[record["currency"].upper()] += record[amount]
        return dict(totals)


def test_refunds_and_balance_transactions_equal_the_truth_to_the_cent(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in FINANCE:
        sync(warehouse_url, sandbox, key)
    expected = Expected(world)
    assert expected.refunds and expected.balance

    with psycopg.connect(warehouse_url) as conn:
        refunds = conn.execute(
            "SELECT r.source_record_id, r.amount_minor, r.currency, r.financial_transaction_id,"
            "       d.source_record_id AS charge, d.financial_transaction_id AS donation_ftid"
            " FROM core.refund r JOIN core.donation d USING (donation_id)"
        ).fetchall()
        assert {row[0] for row in refunds} == set(expected.refunds)
        assert all(row[4] == expected.refunds[row[0]]["charge"] and row[3] == row[5] for row in refunds)
        landed = dict(conn.execute("SELECT currency, sum(amount_minor)::bigint FROM core.refund GROUP BY 1"))
        assert landed == Expected.per_currency(expected.refunds.values())

        txns = conn.execute(
            "SELECT source_record_id, financial_transaction_id, amount_minor, fee_minor, net_minor, type"
            " FROM core.balance_transaction"
        ).fetchall()
        assert {row[0] for row in txns} == set(expected.balance)
        for record_id, ftid, amount, fee, net, kind in txns:
            truth = expected.balance[record_id]
            assert (ftid, amount, fee, net, kind) == (
                truth["ftid"], truth["amount"], truth["fee"], truth["net"], truth["type"]
            ), record_id  # fmt: skip
        for column in ("amount", "fee", "net"):
            landed = dict(
                conn.execute(
                    f"SELECT currency, sum({column}_minor)::bigint FROM core.balance_transaction GROUP BY 1"  # noqa: S608
                )
            )
            assert landed == Expected.per_currency(expected.balance.values(), column), column
        # Refunds are signed negative by Stripe and land so.
        assert conn.execute(
            "SELECT bool_and(amount_minor < 0) FROM core.balance_transaction WHERE type = 'refund'"
        ).fetchone()[0]
        # The processor's fee reaches the gift through its charge's balance transaction.
        fees = dict(
            conn.execute("SELECT source_record_id, fee_minor FROM core.donation WHERE fee_minor IS NOT NULL")
        )
        charge_fees = {t["source"]: t["fee"] for t in expected.balance.values() if t["type"] == "charge"}
        assert fees == charge_fees


def test_planted_faults_and_orphans_wait_in_the_quarantine_with_their_reason(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in FINANCE:
        sync(warehouse_url, sandbox, key)
    expected = Expected(world)
    with psycopg.connect(warehouse_url) as conn:
        for key in FINANCE[1:]:  # the charges' own quarantine is test_engine.py's
            rest = assert_planted_faults_quarantined(conn, world, key)
            if key == "stripe.refunds":
                assert set(rest) == expected.orphan_refunds
                assert all(
                    reason.startswith("unknown charge: the stripe charge in ") for reason in rest.values()
                )
            elif key == "stripe.balance_transactions":
                assert set(rest) == expected.orphan_balance
                assert all(
                    reason.startswith(("unknown charge", "unknown refund")) for reason in rest.values()
                )
            else:
                assert rest == {}, key


def test_the_ledger_drop_matches_the_ledger_truth(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    result = sync(warehouse_url, sandbox, "ledger.postings")
    expected = Expected(world)
    assert result.rows_read == world.truth.expected_count("ledger", "postings")
    assert result.rows_upserted == len(expected.ledger)

    with psycopg.connect(warehouse_url) as conn:
        assert_planted_faults_quarantined(conn, world, "ledger.postings")
        rows = conn.execute(
            "SELECT source_record_id, financial_transaction_id, posting_date::text, account, amount_minor, currency"
            " FROM core.ledger_posting"
        ).fetchall()
        totals = conn.execute(
            "SELECT to_char(posting_date, 'YYYY-MM'), lower(currency), sum(amount_minor)::bigint"
            " FROM core.ledger_posting GROUP BY 1, 2"
        ).fetchall()
    truth = {p["reference"]: p for p in expected.ledger}
    assert {row[0] for row in rows} == set(truth)
    for reference, ftid, day, account, minor, currency in rows:
        line = truth[reference]
        assert (ftid, day, account, currency) == (
            line["transaction_id"],
            line["posting_date"],
            line["account"],
            line["currency"],
        )
        assert minor == round(float(line["amount"]) * 100) and f"{minor / 100:.2f}" == line["amount"]

    # The truth's monthly net covers every line with a number in it: what landed, plus what was quarantined.
    landed: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for month, currency, minor in totals:
        landed[month][currency] += minor
    for line in expected.ledger_bad:
        try:
            landed[line["posting_date"][:7]][line["currency"].lower()] += round(float(line["amount"]) * 100)
        except ValueError:
            continue
    assert {m: dict(c) for m, c in landed.items()} == {
        m: dict(c) for m, c in world.truth.ledger.totals_by_month.items()
    }


def test_an_orphan_refund_is_replayed_once_its_charge_arrives(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    expected = Expected(world)
    first = sync(warehouse_url, sandbox, "stripe.refunds", run="refunds-first")
    assert first.rows_upserted == 0
    with psycopg.connect(warehouse_url) as conn:
        waiting = quarantined(conn, "stripe.refunds")
    assert set(expected.refunds) <= set(waiting)
    assert all(waiting[r].startswith("unknown charge") for r in expected.refunds)

    sync(warehouse_url, sandbox, "stripe.charges", run="charges")
    # A later sync with nothing new at the source still re-tries what waits in the quarantine.
    later = sync(warehouse_url, sandbox, "stripe.refunds", run="later", end=datetime.now(UTC))
    assert later.rows_replayed == len(expected.refunds)

    with psycopg.connect(warehouse_url) as conn:
        landed = {row[0] for row in conn.execute("SELECT source_record_id FROM core.refund")}
        resolved = dict(
            conn.execute(
                "SELECT source_record_id, resolution FROM ops.quarantine"
                " WHERE stream = 'refunds' AND resolved_at IS NOT NULL"
            )
        )
        still_waiting = quarantined(conn, "stripe.refunds")
        raw_copies = conn.execute("SELECT count(*) FROM raw.records WHERE stream = 'refunds'").fetchone()[0]
    assert landed == set(expected.refunds)
    assert resolved == {r: "replayed in run later" for r in expected.refunds}
    # What cannot land (bad payloads, refunds of a quarantined charge) keeps waiting, once each.
    assert (
        set(still_waiting)
        == {str(r) for r in world.truth.malformed("stripe", "refunds")} | expected.orphan_refunds
    )
    assert raw_copies == world.truth.expected_count("stripe", "refunds"), "a replay lands no second raw copy"

    before = _snapshot(warehouse_url)
    again = sync(warehouse_url, sandbox, "stripe.refunds", run="again")
    assert again.rows_replayed == 0
    assert _snapshot(warehouse_url) == before


def _snapshot(url: str) -> dict[str, list[str]]:
    tables = snapshot(url, SNAPSHOT_TABLES)
    with psycopg.connect(url) as conn:
        tables["audit changes"] = [
            str(
                conn.execute("SELECT count(*) FROM audit.audit_events WHERE action <> 'import'").fetchone()[0]
            )
        ]
        return tables


def test_rerunning_every_stream_over_the_same_interval_changes_nothing(
    warehouse_url: str, sandbox: SandboxServer
) -> None:
    end = datetime.now(UTC)
    ordered = sorted(SPECS, key=lambda spec: spec.wave)
    for spec in ordered:
        sync(warehouse_url, sandbox, spec.key, end=end)
    before = _snapshot(warehouse_url)
    assert all(before[t] for t in SNAPSHOT_TABLES), (
        "every table must have rows for the comparison to mean much"
    )

    for spec in ordered:
        sync(warehouse_url, sandbox, spec.key, run="run-2", end=end)

    assert _snapshot(warehouse_url) == before


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"account": "4000 Contributions", "reference": "ch_1", "amount": "40.00"}, None),
        ({"account": "4000 Contributions", "reference": "ch_1", "amount": "-40.00"}, "wrong sign"),
        ({"account": "4000 Contributions", "reference": "re_1", "amount": "-40.00"}, None),
        ({"account": "4000 Contributions", "reference": "re_1", "amount": "40.00"}, "wrong sign"),
        ({"account": "6100 Payment processing fees", "reference": "txn_1", "amount": "-1.46"}, None),
        ({"account": "6100 Payment processing fees", "reference": "txn_1", "amount": "1.46"}, "wrong sign"),
    ],
)
def test_the_ledger_sign_rule(record: dict[str, str], reason: str | None) -> None:
    found = ledger_sign("amount", "account", "reference")(record)
    assert (found is None) if reason is None else (reason in found)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("12.30", True), ("-0.05", True), ("7", True), ("1.234", False), ("n/a", False), ("", False)],
)
def test_ledger_amounts_are_decimals_with_at_most_two_places(text: str, ok: bool) -> None:
    assert (v.decimal_text_amount("amount")({"amount": text}) is None) is ok


def test_a_balance_transaction_whose_net_is_not_amount_less_fee_is_refused() -> None:
    check = net_of_fee("amount", "fee", "net")
    assert check({"amount": 4000, "fee": 146, "net": 3854}) is None
    assert check({"amount": 4000, "fee": 146, "net": 4000}) == "net is not amount - fee"
    assert v.signed_amount_minor("amount")({"amount": -4000}) is None
    assert "non-numeric" in v.signed_amount_minor("amount")({"amount": "-4000"})


def test_a_month_dropped_late_by_finance_still_lands_whole(
    warehouse_url: str, world: World, tmp_path: Path
) -> None:
    """Finance drops March's file in early April, with postings dated before the watermark we passed."""
    from cdp_sandbox.server import sandbox_settings

    folder = tmp_path / "late-drop"
    settings = sandbox_settings(world, "", "ledger", folder)
    spec = spec_for("ledger", "postings")
    stream = lambda: registry.stream("ledger", "postings", settings)  # noqa: E731
    for month in ("2024-01", "2024-02"):
        world.write_ledger_drop(folder, month)
    sync_stream(warehouse_url, stream(), spec, actor=ACTOR, run_id="march-5",
                interval_end=datetime(2024, 3, 5, tzinfo=UTC))  # fmt: skip
    world.write_ledger_drop(folder, "2024-03")
    sync_stream(warehouse_url, stream(), spec, actor=ACTOR, run_id="april-3",
                interval_start=datetime(2024, 4, 3, tzinfo=UTC),
                interval_end=datetime(2024, 4, 3, 2, tzinfo=UTC))  # fmt: skip

    march = [p for p in Expected(world).ledger if p["posting_date"].startswith("2024-03")]
    assert any(p["posting_date"] < "2024-03-05" for p in march), (
        "the test needs postings before the watermark"
    )
    with psycopg.connect(warehouse_url) as conn:
        landed = conn.execute(
            "SELECT count(*) FROM core.ledger_posting"
            " WHERE posting_date >= '2024-03-01' AND posting_date < '2024-04-01'"
        ).fetchone()[0]
    assert landed == len(march)


def test_the_replay_serves_every_stream_an_enrollment_synced_before_its_learner(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    passes = lambda key, record: spec_for(*key.split(".")).check(record) is None  # noqa: E731
    learners = {str(u["id"]) for u in world.records("moodle", "users") if passes("moodle.users", u)}
    enrollments = [e for e in world.records("moodle", "enrollments") if passes("moodle.enrollments", e)]
    landing = {str(e["id"]) for e in enrollments if str(e["userid"]) in learners}
    assert 0 < len(landing) < len(enrollments), "the test needs enrollments of quarantined learners too"

    sync(warehouse_url, sandbox, "moodle.courses")
    early = sync(warehouse_url, sandbox, "moodle.enrollments", run="early")
    assert early.rows_upserted == 0 and early.rows_quarantined == world.truth.expected_count(
        "moodle", "enrollments"
    )
    sync(warehouse_url, sandbox, "moodle.users")
    later = sync(warehouse_url, sandbox, "moodle.enrollments", run="later")
    assert later.rows_replayed == len(landing)
    with psycopg.connect(warehouse_url) as conn:
        landed = {row[0] for row in conn.execute("SELECT source_record_id FROM core.enrollment")}
        waiting = quarantined(conn, "moodle.enrollments")
    assert landed == landing
    assert set(waiting) == {str(e["id"]) for e in world.records("moodle", "enrollments")} - landing
