"""Phase 1's pieces without Airflow: the rules, landing files idempotently, the profile against planted truth."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cdp.migration import legacy_cleanup, legacy_formats, legacy_import, legacy_profile, legacy_rules
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.legacy import write_exports

ACTOR = Actor("test:legacy")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("ana@example.org", None),
        (" Ana@Example.org", "email_not_normalised"),
        ("ana at example.org", "invalid_email"),
        ("ana@@example.org", "invalid_email"),
    ],
)
def test_email_rule(value: str, rule: str | None) -> None:
    assert legacy_rules.check_email(value) == rule
    if rule == "email_not_normalised":
        assert legacy_rules.check_email(legacy_rules.fix_email(value)) is None


@pytest.mark.parametrize(
    ("value", "rule", "fixed"),
    [
        ("2024-03-01", None, "2024-03-01"),
        ("2024/03/01", "date_not_iso", "2024-03-01"),
        ("01.03.2024", "date_not_iso", "2024-03-01"),
        ("2024-02-30", "invalid_date", None),
        ("31.02.2024", "invalid_date", None),
        ("03/01/2024", "invalid_date", None),  # day and month order unknowable: never guessed
    ],
)
def test_date_rule_fixes_only_unambiguous_formats(value: str, rule: str | None, fixed: str | None) -> None:
    assert legacy_rules.check_date(value) == rule
    if fixed:
        assert legacy_rules.fix_date(value) == fixed


@pytest.mark.parametrize(
    ("value", "rule"),
    [("+4401234567", None), ("+44 01234 5678", "phone_not_e164"), ("01234 5678", "invalid_phone")],
)
def test_phone_rule_needs_a_country_code_to_fix(value: str, rule: str | None) -> None:
    assert legacy_rules.check_phone(value) == rule


def test_a_row_breaking_several_rules_counts_once_as_an_error_and_under_each_rule() -> None:
    good = {"donor_ref": "D1", "name": "A", "email": "a@example.org", "gift_date": "2024-01-01",
            "amount": "10.00", "currency": "USD"}  # fmt: skip
    bad = {**good, "donor_ref": "D2", "amount": "10,00 €", "email": "a at example.org"}
    rows = {
        "donors": [
            legacy_import.Row("donors", f"k{n}", "s", n, values) for n, values in enumerate((good, bad), 1)
        ]
    }

    result = legacy_profile.profile_rows("before", "f", rows)

    assert result.records_with_errors == 1
    assert result.invalid["donors"] == {"invalid_amount": 1, "invalid_email": 1}
    assert result.accuracy_rate == 0.5


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def test_import_is_idempotent_and_a_changed_file_is_a_new_content(warehouse_url: str, tmp_path: Path) -> None:
    truth = write_exports(World(seed=3, learners=120), tmp_path)

    first = legacy_import.import_exports(warehouse_url, ACTOR, "r1", tmp_path)
    again = legacy_import.import_exports(warehouse_url, ACTOR, "r2", tmp_path)

    assert all(f.new for f in first) and not any(f.new for f in again)
    assert (
        _count(warehouse_url, "SELECT count(*) FROM raw.records WHERE source = 'legacy'") == truth.total_rows
    )
    assert (
        _count(warehouse_url, "SELECT count(*) FROM audit.audit_events WHERE entity_type LIKE 'legacy.%'")
        == 6
    )

    path = tmp_path / "lms_enrollments.csv"
    path.write_text(path.read_text() + "99999,1000,C100,2024-05-01,active\r\n")
    changed = legacy_import.import_exports(warehouse_url, ACTOR, "r3", tmp_path)

    assert [f.export for f in changed if f.new] == ["lms_enrollments"]
    assert _count(warehouse_url, "SELECT count(*) FROM raw.records WHERE source = 'legacy'") == (
        truth.total_rows + truth.rows["lms_enrollments"] + 1
    )


def test_a_file_with_the_wrong_header_is_refused_whole(warehouse_url: str, tmp_path: Path) -> None:
    (tmp_path / "donors.xlsx").write_bytes(b"")
    (tmp_path / "lms_learners.csv").write_text("id,name\r\n1,Ana\r\n")

    with pytest.raises(legacy_import.LegacyFormatError, match="lms_learners.csv: header"):
        legacy_import.import_exports(warehouse_url, ACTOR, "r1", tmp_path)
    assert _count(warehouse_url, "SELECT count(*) FROM raw.records WHERE source = 'legacy'") == 0


def test_landed_legacy_files_cannot_be_edited(warehouse_url: str, tmp_path: Path) -> None:
    write_exports(World(seed=3, learners=60), tmp_path)
    legacy_import.import_exports(warehouse_url, ACTOR, "r1", tmp_path)

    with psycopg.connect(warehouse_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE raw.legacy_file SET rows = 0")


def test_cleanup_again_changes_nothing_and_writes_no_event(warehouse_url: str, tmp_path: Path) -> None:
    truth = write_exports(World(seed=3, learners=200), tmp_path)
    files = legacy_import.import_exports(warehouse_url, ACTOR, "r1", tmp_path)
    legacy_profile.profile(warehouse_url, ACTOR, "r1", files)
    first = legacy_cleanup.cleanup(warehouse_url, ACTOR, "r1", files)
    events = _count(warehouse_url, "SELECT count(*) FROM audit.audit_events")

    second = legacy_cleanup.cleanup(warehouse_url, ACTOR, "r2", files)

    assert first.changed_rows == truth.total_rows and second.changed_rows == 0
    assert sum(second.queued.values()) == 0
    assert _count(warehouse_url, "SELECT count(*) FROM audit.audit_events") == events
    assert second.after.accuracy_rate == pytest.approx(truth.accuracy_after())


def test_the_accuracy_target_is_a_success_criterion_that_fails_the_phase() -> None:
    legacy_profile.check_target({"after": {"accuracy_rate": 0.985}}, 0.98)

    with pytest.raises(
        RuntimeError, match="LegacyAccuracyBelowTarget: data accuracy after cleanup is 97.90%"
    ):
        legacy_profile.check_target({"after": {"accuracy_rate": 0.979}}, 0.98)
    with pytest.raises(RuntimeError, match="LegacyAccuracyBelowTarget"):
        legacy_profile.check_target({"after": {"accuracy_rate": 0.98}}, 0.98)  # the target is "above 98%"


def test_cli_writes_the_same_exports_for_the_same_seed(tmp_path: Path, capsys) -> None:
    from cdp import cli

    for folder in ("a", "b"):
        assert (
            cli.main(["sandbox", "legacy-exports", "--out", str(tmp_path / folder), "--learners", "80"]) == 0
        )
    names = sorted(p.name for p in (tmp_path / "a").iterdir())

    assert names == sorted(name for names, _ in legacy_formats.EXPORTS.values() for name in names)
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    assert "planted defects" in capsys.readouterr().out
