"""mart.outreach_eligible: the latest statement wins, minors need verified parental consent, unknown age
counts as a minor, merged records are excluded — and only the outreach role's view leads to a list."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from privacy_seed import add_consent, add_person, eligible, years_ago

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_an_adult_who_gave_consent_is_eligible_and_a_withdrawal_removes_them(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        adult = add_person(conn, born=years_ago(30), jurisdiction="US")
        add_consent(conn, adult, "given", stated_at=T0)
        assert adult in eligible(conn)
        add_consent(conn, adult, "withdrawn", stated_at=T0 + timedelta(days=1))
        assert adult not in eligible(conn)
        # History is kept: both statements are there; only the decision changed.
        assert (
            conn.execute("SELECT count(*) FROM core.consent WHERE person_id = %s", (adult,)).fetchone()[0]
            == 2
        )
        add_consent(conn, adult, "given", stated_at=T0 + timedelta(days=2))
        assert adult in eligible(conn)


def test_the_latest_statement_by_time_stated_wins_not_the_latest_recorded(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        adult = add_person(conn, born=years_ago(45), jurisdiction="GB")
        add_consent(conn, adult, "refused", stated_at=T0 + timedelta(days=5))
        add_consent(conn, adult, "given", stated_at=T0)  # synced later, said earlier
        assert adult not in eligible(conn)


def test_consent_is_per_purpose(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        adult = add_person(conn, born=years_ago(30))
        add_consent(conn, adult, "given", purpose="surveys")
        assert adult in eligible(conn, "surveys")
        assert adult not in eligible(conn, "fundraising")


@pytest.mark.parametrize(
    ("age", "jurisdiction", "statuses", "expected"),
    [
        (10, "US", ["given"], False),  # COPPA: under 13 needs verified parental consent
        (10, "US", ["parental_consent_pending"], False),
        (10, "US", ["parental_consent_verified"], True),
        (10, "US", ["parental_consent_verified", "given"], True),  # the child confirms later
        (10, "US", ["parental_consent_verified", "withdrawn"], False),
        (10, "US", ["parental_consent_verified", "withdrawn", "given"], False),  # the parent's no stands
        (14, "US", ["given"], True),
        (15, "DE", ["given"], False),  # Germany: 16
        (15, "DE", ["parental_consent_verified"], True),
        (15, "FR", ["given"], True),  # France: 15
        (13, "ES", ["given"], False),  # Spain: 14
        (17, None, ["given"], False),  # no jurisdiction: the default, 18
        (17, "ZZ", ["given"], False),  # a jurisdiction without a rule: the default
        (18, "ZZ", ["given"], True),
        (12, "SE", ["given"], False),  # never below 13, whatever the jurisdiction
    ],
)
def test_age_rules_per_jurisdiction(
    warehouse_url: str, age: int, jurisdiction: str | None, statuses: list[str], expected: bool
) -> None:
    with psycopg.connect(warehouse_url) as conn:
        person = add_person(conn, born=years_ago(age), jurisdiction=jurisdiction)
        for offset, status in enumerate(statuses):
            add_consent(conn, person, status, stated_at=T0 + timedelta(days=offset))
        assert (person in eligible(conn)) is expected


@pytest.mark.parametrize("status", ["given", "parental_consent_verified"])
def test_unknown_age_is_never_eligible(warehouse_url: str, status: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        unknown = add_person(conn, born=None, jurisdiction="US")
        add_consent(conn, unknown, status)
        assert unknown not in eligible(conn)
        reason = conn.execute(
            "SELECT refusal_reason FROM mart.outreach_decision WHERE person_id = %s AND purpose = 'course_messages'",
            (unknown,),
        ).fetchone()[0]
        assert reason == "age_unknown"
        # Once the age is known (an adult), the same statement counts.
        conn.execute(
            "UPDATE core.person SET date_of_birth = %s WHERE person_id = %s", (years_ago(30), unknown)
        )
        assert unknown in eligible(conn)


def test_merged_records_are_excluded_and_their_statements_follow_the_survivor(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        survivor = add_person(conn, born=years_ago(30))
        duplicate = add_person(conn, born=years_ago(30))
        add_consent(conn, duplicate, "given", stated_at=T0)
        conn.execute("UPDATE core.person SET merged_into = %s WHERE person_id = %s", (survivor, duplicate))
        assert eligible(conn) == {survivor}
        add_consent(conn, duplicate, "withdrawn", stated_at=T0 + timedelta(days=1))
        assert eligible(conn) == set()


def _oracle(age: int | None, jurisdiction: str | None, statuses: list[str], rules: dict[str, int]) -> bool:
    """The rules, restated independently in Python."""
    if not statuses or statuses[-1] not in ("given", "parental_consent_verified") or age is None:
        return False
    threshold = rules.get((jurisdiction or "").upper(), rules["DEFAULT"])
    if age >= threshold:
        return True
    last_verified = max((i for i, s in enumerate(statuses) if s == "parental_consent_verified"), default=None)
    last_negative = max((i for i, s in enumerate(statuses) if s in ("refused", "withdrawn")), default=None)
    return last_verified is not None and (last_negative is None or last_verified > last_negative)


def test_a_random_population_never_puts_a_minor_or_unknown_age_on_a_list(warehouse_url: str) -> None:
    rng = random.Random(6)
    statuses = ["given", "refused", "withdrawn", "parental_consent_pending", "parental_consent_verified"]
    people: dict[str, tuple[int | None, str | None, list[str]]] = {}
    with psycopg.connect(warehouse_url) as conn:
        rules = dict(
            conn.execute("SELECT jurisdiction, age_of_consent FROM core.consent_age_rule").fetchall()
        )
        for _ in range(300):
            age = rng.choice([None, *range(5, 25), 30, 70])
            jurisdiction = rng.choice([None, "US", "DE", "FR", "ES", "GB", "BR", "NL"])
            history = [rng.choice(statuses) for _ in range(rng.randint(0, 4))]
            person = add_person(conn, born=None if age is None else years_ago(age), jurisdiction=jurisdiction)
            for offset, status in enumerate(history):
                add_consent(conn, person, status, stated_at=T0 + timedelta(hours=offset))
            people[person] = (age, jurisdiction, history)
        listed = eligible(conn)
        ages = dict(
            conn.execute(
                "SELECT person_id::text, date_of_birth FROM core.person WHERE person_id::text = ANY(%s)",
                (list(listed),),
            ).fetchall()
        )
    expected = {person for person, facts in people.items() if _oracle(*facts, rules)}
    assert listed == expected
    assert 20 < len(listed) < 280  # the population really mixes both outcomes
    for person in listed:
        age, jurisdiction, history = people[person]
        assert ages[person] is not None
        if age < rules.get((jurisdiction or "").upper(), rules["DEFAULT"]):
            assert "parental_consent_verified" in history


def test_the_outreach_role_reads_the_list_and_nothing_else(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        adult = add_person(conn, born=years_ago(30), email="list@example.org")
        add_consent(conn, adult, "given")
        conn.commit()
        conn.execute("SET ROLE cdp_outreach")
        rows = conn.execute("SELECT person_id::text, email FROM mart.outreach_eligible").fetchall()
        assert rows == [(adult, "list@example.org")]
        for statement in (
            "SELECT email FROM core.person",
            "SELECT * FROM core.consent",
            "SELECT * FROM mart.outreach_decision",
            "SELECT * FROM raw.records",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
            conn.execute("SET ROLE cdp_outreach")


def test_outreach_role_privileges_are_exactly_the_view(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        readable = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('raw', 'core', 'mart', 'ops', 'audit') AND c.relkind IN ('r', 'v', 'm', 'p')"
            " AND has_any_column_privilege('cdp_outreach', c.oid, 'SELECT')"
        ).fetchall()
    assert readable == [("mart.outreach_eligible",)]


def test_years_ago_is_exact_enough() -> None:
    born = years_ago(13)
    today = date.today()
    assert (today.year - born.year) - ((today.month, today.day) < (born.month, born.day)) == 13
