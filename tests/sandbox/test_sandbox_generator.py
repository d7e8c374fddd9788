"""The generator: deterministic, fast at scale, messy in the ways the seeds describe, and truthful."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from cdp_sandbox import people
from cdp_sandbox.formats import CURRENCIES
from cdp_sandbox.generator import World

START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[a-z]+$")


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=21, learners=3000, start=START, end=END)


def fingerprint(world: World) -> str:
    sample = {
        f"{s}.{n}": [t.record(i) for i in range(0, len(t), max(1, len(t) // 7))]
        for (s, n), t in world.tables.items()
    }
    return json.dumps(sample, sort_keys=True, default=str)


def test_same_seed_gives_the_same_world_and_another_seed_does_not() -> None:
    assert fingerprint(World(seed=4, learners=500)) == fingerprint(World(seed=4, learners=500))
    assert fingerprint(World(seed=4, learners=500)) != fingerprint(World(seed=5, learners=500))


def test_builds_100k_learners_with_the_benchmark_volumes_quickly() -> None:
    started = time.perf_counter()
    big = World(seed=1, learners=100_000, enrollments=300_000, donations=200_000, survey_responses=50_000)
    built = time.perf_counter() - started
    assert built < 20, f"building took {built:.1f}s"
    assert len(big.table("moodle", "enrollments")) == 300_000
    assert len(big.table("stripe", "charges")) == 200_000
    assert len(big.table("zigpoll", "responses")) + len(big.table("typeform", "responses")) == 50_000
    last = big.table("moodle", "enrollments").record(299_999)
    assert last["id"] == 300_000


def test_duplicate_rate_is_about_the_configured_rate(world: World) -> None:
    users = world.table("moodle", "users")
    share = world.truth.duplicate_records("moodle", "users") / len(users)
    assert 0.06 < share < 0.10
    variants = Counter(people.VARIANT_NAMES[int(v)] for v in users.columns["variant"])
    for kind in ("nickname", "typo", "order_swap", "transliteration", "partner_reupload"):
        assert variants[kind] > 0, f"no {kind} duplicates"


def test_truth_person_ids_tie_duplicates_to_one_person(world: World) -> None:
    users = world.table("moodle", "users")
    variants = users.columns["variant"]
    reupload = int(np.nonzero(variants == people.PARTNER_REUPLOAD)[0][0])
    copy = users.record(reupload)
    person = world.truth.person_of("moodle", "users", copy["id"])
    originals = [
        rid for rid, pid in world.truth.person_map("moodle", "users") if pid == person and rid != copy["id"]
    ]
    assert originals, "a re-uploaded learner has an original record"
    original = users.record(users.index_of(originals[0]))
    assert (original["firstname"], original["lastname"]) == (copy["firstname"], copy["lastname"])
    assert original["email"] == copy["email"] and original["username"] != copy["username"]
    assert world.truth.duplicate_variant(copy["id"]) == "partner_reupload"


def test_people_are_as_messy_as_real_registrations(world: World) -> None:
    users = [world.table("moodle", "users").record(i) for i in range(len(world.table("moodle", "users")))]
    assert any(u["lastname"] == "-" for u in users), "single-name learners"
    assert any(" " in u["lastname"] for u in users), "two family names"
    emails = Counter(u["email"] for u in users if u["email"])
    assert any(n > 1 for n in emails.values()), "families sharing one email"
    minors = world.truth.minors(13)
    assert minors, "children under 13"
    consent = Counter(
        next(f["value"] for f in u["customfields"] if f["shortname"] == "parentalconsent")
        for u in users
        if world.truth.person_of("moodle", "users", u["id"]) in minors
    )
    assert consent["pending"] > 0 and consent["verified"] > 0
    assert any(
        not next(f["value"] for f in u["customfields"] if f["shortname"] == "dateofbirth") for u in users
    )


def test_donors_who_never_enrolled_exist(world: World) -> None:
    donors = {pid for _, pid in world.truth.person_map("stripe", "charges")}
    learners = {pid for _, pid in world.truth.person_map("moodle", "users")}
    assert donors - learners and donors & learners


def test_survey_payloads_sometimes_lack_age(world: World) -> None:
    zig = list(world.records("zigpoll", "responses"))
    assert any("age" not in r["metadata"] for r in zig) and any("age" in r["metadata"] for r in zig)
    typeform = list(world.records("typeform", "responses"))
    refs = [{a["field"]["ref"] for a in r["answers"]} for r in typeform]
    assert any("age" not in r for r in refs) and any("age" in r for r in refs)
    participants = list(world.records("zigpoll", "participants"))
    assert all("consent" in p for p in participants) and all("consent" not in r for r in zig)


def test_malformed_records_are_really_malformed_for_their_reason(world: World) -> None:
    checks = {
        "malformed_email": lambda r: (
            not EMAIL.match(r.get("email") or r.get("Email") or r["billing_details"]["email"])
        ),
        "negative_amount": lambda r: (
            (float(r.get("amount", r.get("Amount", r.get("npsp__Amount__c", 0)))) < 0)
            != (r.get("account", "").startswith("6100"))
        ),  # ledger fee lines are negative: there the sign flips
        "unknown_currency": lambda r: (
            str(r.get("currency", r.get("CurrencyIsoCode"))).lower() not in CURRENCIES
        ),
    }
    seen = Counter()
    for source, name in [
        ("moodle", "users"),
        ("stripe", "charges"),
        ("salesforce", "Opportunity"),
        ("salesforce", "Contact"),
        ("ledger", "postings"),
    ]:
        table = world.table(source, name)
        for record_id, reason in world.truth.malformed(source, name).items():
            record = table.record(table.index_of(record_id))
            seen[reason] += 1
            if reason in checks:
                assert checks[reason](record), (source, name, reason)
        for index in range(0, len(table), 97):
            if (
                not table.malformed[index]
                and source in ("moodle", "salesforce")
                and name in ("users", "Contact")
            ):
                record = table.record(index)
                assert EMAIL.match(record.get("email") or record.get("Email")), (
                    "well-formed rows stay well-formed"
                )
    assert len(seen) >= 4


def test_expected_counts_add_up_across_adjacent_windows(world: World) -> None:
    middle = datetime(2023, 7, 1, tzinfo=UTC)
    for source, name in world.tables:
        whole = world.truth.expected_count(source, name, START, END)
        assert whole == world.truth.expected_count(source, name, START, middle) + world.truth.expected_count(
            source, name, middle, END
        )
        assert world.truth.expected_count(source, name) == len(world.table(source, name))


def test_money_ties_out_across_stripe_salesforce_and_the_ledger(world: World, tmp_path) -> None:
    ledger = world.truth.ledger
    transaction_of_charge = {
        c["id"]: c["id"]
        for c in world.records("stripe", "charges")  # the charge id is the gift id
    }
    in_crm = {o["Stripe_Charge_Id__c"] for o in world.records("salesforce", "Opportunity")}
    never_synced = {transaction_of_charge[c] for c in set(transaction_of_charge) - in_crm}
    assert set(ledger.discrepancies["missing_in_crm"]) == never_synced != set()
    written = world.write_ledger_drop(tmp_path, "2023-04")
    assert (
        written.read_text().splitlines()[0] == "transaction_id,posting_date,account,amount,currency,reference"
    )
    all_rows = [
        row for month in world.ledger_months() for row in world.records("ledger", "postings", *_month(month))
    ]
    posted = {row["transaction_id"] for row in all_rows}
    assert not set(ledger.discrepancies["missing_in_ledger"]) & posted
    assert sum(ledger.stripe_gross_by_month["2023-04"].values()) > 0
    malformed = world.truth.malformed("ledger", "postings")
    fees = [
        row for row in all_rows if row["account"].startswith("6100") and row["reference"] not in malformed
    ]
    assert fees and all(row["amount"].startswith("-") for row in fees)


def _month(month: str) -> tuple[datetime, datetime]:
    year, mon = (int(p) for p in month.split("-"))
    return datetime(year, mon, 1, tzinfo=UTC), datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=UTC)


def test_touch_moves_a_record_out_of_its_window(world: World) -> None:
    edited = World(seed=21, learners=300, start=START, end=END)
    before = edited.truth.expected_count("salesforce", "Contact", START, END)
    record_id = edited.table("salesforce", "Contact").id_of(0)
    edited.touch("salesforce", "Contact", [record_id], END)
    assert edited.truth.expected_count("salesforce", "Contact", START, END) == before - 1
    assert edited.table("salesforce", "Contact").record(0)["SystemModstamp"].startswith("2024-01-01T00:00:00")
