"""Phase 1's load step: the cleaned legacy records reach core through the sync's person resolution, a row
queued for review never does, a row that cannot be loaded is kept with its reason, and a re-run changes
nothing. Expected values are read from the files and the generator's planted truth, not from the code."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from openpyxl import load_workbook
from support import snapshot

from cdp.migration import legacy_cleanup, legacy_formats, legacy_import, legacy_profile
from cdp.migration.legacy_load import load_core, minor_units
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.legacy import UNFIXABLE, LegacyTruth, write_exports

ACTOR = Actor("test:legacy-load")
CORE = ("core.person", "core.person_source_id", "core.course", "core.enrollment", "core.donation")


def giver(email: str, name: str) -> str:
    return email.strip().lower() + "|" + " ".join(name.split()).lower()


def file_rows(folder: Path, export: str, truth: LegacyTruth) -> list[tuple[str, int, dict[str, str]]]:
    """(file, row number, values) of every data row as the files hold it (the unparseable row left out)."""
    header = legacy_formats.EXPORTS[export][1]
    out = []
    for name in truth.files[export]:
        path = folder / name
        if name.endswith(".xlsx"):
            book = load_workbook(path, read_only=True)
            lines = [
                ["" if v is None else str(v) for v in row]
                for row in book.worksheets[0].iter_rows(values_only=True)
            ]
            book.close()
        else:
            lines = list(csv.reader(path.read_text().splitlines()))
        for number, cells in enumerate(lines[1:], start=1):
            if truth.defects[export].get((name, number)) == "unparseable":
                continue
            out.append((name, number, dict(zip(header, cells, strict=True))))
    return out


def loadable(folder: Path, export: str, truth: LegacyTruth) -> list[dict[str, str]]:
    """The rows the migration may load: no defect people must decide, and not an exact duplicate."""
    return [
        values
        for name, number, values in file_rows(folder, export, truth)
        if truth.defects[export].get((name, number)) not in UNFIXABLE | {"exact_duplicate"}
    ]


@pytest.fixture
def cleaned(warehouse_url: str, tmp_path: Path):
    folder = tmp_path / "exports"
    truth = write_exports(World(seed=7, learners=300), folder)
    files = legacy_import.import_exports(warehouse_url, ACTOR, "r1", folder)
    legacy_profile.profile(warehouse_url, ACTOR, "r1", files)
    legacy_cleanup.cleanup(warehouse_url, ACTOR, "r1", files)
    return folder, truth, files


def identities(url: str, source: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT source_record_id, person_id::text FROM core.person_source_id WHERE source = %s",
                (source,),
            ).fetchall()
        )


def test_minor_units_are_exact_or_refused() -> None:
    assert minor_units("25.5", "USD") == 2550
    assert minor_units("0.99", "EUR") == 99
    assert minor_units("100", "GBP") == 10000
    assert minor_units("2500", "JPY") == 2500
    assert minor_units("25.50", "JPY") is None  # a yen has no cents: never rounded
    assert minor_units("10,00", "EUR") is None
    assert minor_units("-5.00", "USD") is None


def test_cleaned_legacy_records_reach_core_and_queued_ones_do_not(warehouse_url: str, cleaned) -> None:
    folder, truth, files = cleaned

    result = load_core(warehouse_url, ACTOR, "load-1", files)

    learners = loadable(folder, "lms_learners", truth)
    contacts = loadable(folder, "crm_contacts", truth)
    gifts = loadable(folder, "donors", truth)
    enrollments = loadable(folder, "lms_enrollments", truth)
    lms = identities(warehouse_url, "legacy_lms")
    crm = identities(warehouse_url, "legacy_crm")
    donors = identities(warehouse_url, "legacy_donors")
    assert set(lms) == {row["learner_id"] for row in learners}
    assert set(crm) == {row["contact_id"] for row in contacts}
    assert set(donors) == {giver(row["email"], row["name"]) for row in gifts}
    with psycopg.connect(warehouse_url) as conn:
        people = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT person_id::text, email_normalized, given_name, is_learner, is_donor FROM core.person"
            )
        }
        donations = {
            row[0]: (row[1], row[2].strip(), row[3])
            for row in conn.execute(
                "SELECT source_record_id, amount_minor, currency, person_id::text FROM core.donation"
                " WHERE source = 'legacy_donors'"
            )
        }
        enrolled = dict(
            conn.execute(
                "SELECT source_record_id, person_id::text FROM core.enrollment WHERE source = 'legacy_lms'"
            ).fetchall()
        )
        quarantined = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT payload ->> 'enrollment_id', reason FROM ops.quarantine"
                " WHERE source = 'legacy' AND stream = 'lms_enrollments' AND resolved_at IS NULL"
            )
        }
        events = conn.execute(
            "SELECT entity_type, count(*) FROM audit.audit_events WHERE action = 'import'"
            " AND entity_type LIKE 'legacy_core.%' GROUP BY 1"
        ).fetchall()
    # Each learner is one person carrying the learner's (cleaned) email and first name.
    for row in learners:
        assert people[lms[row["learner_id"]]][:3] == (row["email"].strip().lower(), row["first_name"], True)
    # A CRM contact naming a loaded learner is that learner's person (through the source identity).
    linked = [row for row in contacts if row["lms_learner_id"] in lms]
    assert len(linked) > 20
    assert all(crm[row["contact_id"]] == lms[row["lms_learner_id"]] for row in linked)

    # Every other person comes from the exact key or is new. A key that two records of the CRM export
    # share (two people of one household with one email and one first name) is not guessed at: each record
    # stays its own person, and a gift under that key, which could be either, a third (the dedupe decides).
    def key(email: str, given: str) -> tuple[str, str]:
        return email.strip().lower(), given.strip().lower()

    crm_keys: dict[tuple[str, str], set[str]] = {}
    for r in contacts:
        if r["lms_learner_id"] not in lms:
            crm_keys.setdefault(key(r["email"], r["first_name"]), set()).add(r["contact_id"])
    ambiguous = {k: len(ids) for k, ids in crm_keys.items() if len(ids) > 1}
    learner_keys = {key(r["email"], r["first_name"]) for r in learners}
    gift_keys = {key(r["email"], r["name"].split(" ")[0]) for r in gifts}
    expected_people: dict[tuple[str, str], int] = dict.fromkeys(learner_keys | set(crm_keys) | gift_keys, 1)
    for k, n in ambiguous.items():
        expected_people[k] = n + (k in gift_keys)
    with psycopg.connect(warehouse_url) as conn:
        held = dict(
            conn.execute(
                "SELECT email_normalized || '|' || lower(given_name), count(*) FROM core.person GROUP BY 1"
            ).fetchall()
        )
    assert ambiguous  # the generator plants such households
    assert held == {f"{e}|{g}": n for (e, g), n in expected_people.items()}
    # Money exact to the cent, with its currency, each gift to the person of its email.
    expected = {
        r["donor_ref"]: (int(Decimal(r["amount"]) * 100), r["currency"], donors[giver(r["email"], r["name"])])
        for r in gifts
    }
    assert donations == expected
    assert all(people[person][3] for *_, person in donations.values())
    # A learner's gift lands on the learner's person (the exact key), which is now a donor too.
    learner_of = {key(r["email"], r["first_name"]): lms[r["learner_id"]] for r in learners}
    giving_learners = [r for r in gifts if key(r["email"], r["name"].split(" ")[0]) in learner_of]
    assert len(giving_learners) > 10
    for r in giving_learners:
        person = learner_of[key(r["email"], r["name"].split(" ")[0])]
        assert donations[r["donor_ref"]][2] == person and people[person][2:] == (True, True)
    # Enrollments: those whose learner was loaded; the others kept in the quarantine with the reason.
    assert set(enrolled) == {r["enrollment_id"] for r in enrollments if r["learner_id"] in lms}
    assert all(
        enrolled[r["enrollment_id"]] == lms[r["learner_id"]] for r in enrollments if r["learner_id"] in lms
    )
    waiting = {r["enrollment_id"] for r in enrollments if r["learner_id"] not in lms}
    assert waiting and set(quarantined) == waiting
    assert all("waits in ops.legacy_review" in reason for reason in quarantined.values())
    assert result.rejected["lms_enrollments"] == len(waiting)
    # No row queued for review reached core.
    queued_learners = {
        values["learner_id"]
        for name, number, values in file_rows(folder, "lms_learners", truth)
        if truth.defects["lms_learners"].get((name, number)) in UNFIXABLE
    }
    queued_gifts = {
        values["donor_ref"]
        for name, number, values in file_rows(folder, "donors", truth)
        if truth.defects["donors"].get((name, number)) in UNFIXABLE
    }
    assert queued_learners and not queued_learners & set(lms)
    assert queued_gifts and not queued_gifts & set(donations)
    assert dict(events) == {
        f"legacy_core.{e}": 1 for e in ("lms_learners", "crm_contacts", "donors", "lms_enrollments")
    }


def test_loading_again_changes_nothing_and_writes_no_event(warehouse_url: str, cleaned) -> None:
    _, _, files = cleaned
    load_core(warehouse_url, ACTOR, "load-1", files)
    before = snapshot(warehouse_url, (*CORE, "ops.quarantine", "audit.audit_events"))

    again = load_core(warehouse_url, ACTOR, "load-2", files)

    assert sum(again.changed.values()) == 0 and sum(again.rejected.values()) == 0
    assert sum(again.loaded.values()) > 0
    assert snapshot(warehouse_url, (*CORE, "ops.quarantine", "audit.audit_events")) == before


def test_a_legacy_learner_joins_the_person_the_warehouse_already_knows(warehouse_url: str, cleaned) -> None:
    """The exact key (normalised email + given name) resolves to a known person; legacy values only fill."""
    folder, truth, files = cleaned
    row = loadable(folder, "lms_learners", truth)[0]
    with psycopg.connect(warehouse_url) as conn:
        known = conn.execute(
            "INSERT INTO core.person (given_name, family_name, email, email_normalized, phone)"
            " VALUES (%s, 'Known-Family', %s, %s, NULL) RETURNING person_id::text",
            (row["first_name"], row["email"].upper(), row["email"].strip().lower()),
        ).fetchone()[0]

    load_core(warehouse_url, ACTOR, "load-1", files)

    assert identities(warehouse_url, "legacy_lms")[row["learner_id"]] == known
    with psycopg.connect(warehouse_url) as conn:
        family, phone = conn.execute(
            "SELECT family_name, phone FROM core.person WHERE person_id = %s", (known,)
        ).fetchone()
    assert family == "Known-Family"  # not overwritten by the legacy value
    assert phone == (row["phone"] or None)  # filled in where core knew nothing
