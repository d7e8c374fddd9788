"""The nightly dedupe connects as its own role, cdp_dedupe (issue 15, revision 0027): a whole run as a real
login of that role merges certain duplicates, and the merge moves consent statements and donations that the
login itself can neither read nor change (ops.merge_people does it as cdp_definer); the same login is refused
consent, raw payloads, donations and writing audit events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import psycopg
import pytest
from support import drop_logins, make_login

from cdp.identity.runs import run_dedupe
from cdp.quality.data_alerts import alert_once, duplicate_spike_findings
from cdp.runtime.assets import skip_before_first_complete_sync
from cdp.sync.specs import SCHEDULED_SPECS
from cdp.warehouse import Actor

ACTOR = Actor("pytest:dedupe-role")
#: A `warehouse` connection nobody answers: a run that used it instead of its family's would fail.
UNREACHABLE = "postgresql://nobody@127.0.0.1:9/cdp"


@pytest.fixture
def dedupe_login(synced_url: str) -> Iterator[Callable[..., str]]:
    """Real logins of cdp_dedupe (or another DAG family's role) on the synced warehouse (``support.make_login``);
    dropped afterwards."""
    created: list[str] = []

    def create(role: str = "cdp_dedupe") -> str:
        login, url = make_login(synced_url, role)
        created.append(login)
        return url

    yield create
    drop_logins(synced_url, created)


def _duplicates_with_consent_and_a_gift(url: str) -> tuple[str, str]:
    """The same learner twice (one name, birth date, email, phone), each with consent statements, the later
    one with a gift: a certain match. Returns (first, second)."""
    people = []
    with psycopg.connect(url) as conn:
        for n, created in enumerate(("2024-01-05", "2024-06-20")):
            person = str(
                conn.execute(
                    "INSERT INTO core.person (given_name, family_name, date_of_birth, email, email_normalized,"
                    " phone, phone_e164, is_learner, created_at, updated_at) VALUES ('Ifeoma', 'Adebayo',"
                    " '1985-06-14', 'Ifeoma.Adebayo@example.org', 'ifeoma.adebayo@example.org', '+2348035550101',"
                    " '+2348035550101', true, %s, now()) RETURNING person_id",
                    (created,),
                ).fetchone()[0]
            )
            for purpose in ("course_messages", "surveys"):
                conn.execute(
                    "INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id,"
                    " stated_at) VALUES (%s, %s, 'given', 'consent', 'moodle', %s, now())",
                    (person, purpose, f"role-test-{n}-{purpose}"),
                )
            people.append(person)
        conn.execute(
            "INSERT INTO core.donation (financial_transaction_id, person_id, amount_minor, currency, received_at,"
            " status, refunded_minor, source, source_record_id)"
            " VALUES ('ft_role_test', %s, 2500, 'USD', now(), 'succeeded', 0, 'stripe', 'ch_role_test')",
            (people[1],),
        )
    return people[0], people[1]


def _refused(url: str, statement: str) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_a_dedupe_run_as_its_own_login_merges_and_moves_what_it_cannot_read(
    synced_url: str, dedupe_login, audit_events
) -> None:
    first, second = _duplicates_with_consent_and_a_gift(synced_url)
    login_url = dedupe_login()
    login = urlsplit(login_url).username

    report = run_dedupe(login_url, ACTOR, "night-role")

    assert report.merged > 0
    with psycopg.connect(synced_url) as conn:
        merge = conn.execute(
            "SELECT merge_id, survivor_id::text, absorbed_id::text FROM ops.identity_merge"
            " WHERE %s::uuid IN (survivor_id, absorbed_id) AND %s::uuid IN (survivor_id, absorbed_id)",
            (first, second),
        ).fetchone()
        assert merge is not None, "the crafted duplicate was not merged"
        merge_id, survivor, absorbed = merge
        consent_owners = {
            str(row[0])
            for row in conn.execute(
                "SELECT person_id FROM core.consent WHERE source_record_id LIKE 'role-test-%%'"
            ).fetchall()
        }
        donor = conn.execute(
            "SELECT person_id::text FROM core.donation WHERE source_record_id = 'ch_role_test'"
        ).fetchone()[0]
        moved = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, count(*) FROM ops.identity_merge_move WHERE merge_id = %s"
                " GROUP BY 1",
                (merge_id,),
            ).fetchall()
        )
        merged_into = conn.execute(
            "SELECT merged_into::text FROM core.person WHERE person_id = %s", (absorbed,)
        ).fetchone()[0]
        writers = conn.execute(
            "SELECT DISTINCT session_role FROM audit.audit_events WHERE action = 'merge' OR action = 'dedupe_run'"
        ).fetchall()
    assert merged_into == survivor
    assert consent_owners == {survivor}, "every consent statement moved to the survivor"
    assert moved["core.consent.person_id"] == 2
    # The older record survives: the gift on the newer one moved past the donation guard (a merge's move).
    assert (survivor, absorbed) == (first, second)
    assert donor == survivor and moved["core.donation.person_id"] == 1
    events = [e for e in audit_events(synced_url, "merge") if e["details"]["merge_id"] == merge_id]
    assert len(events) == 1 and events[0]["details"]["rows_moved"]["core.consent.person_id"] == 2
    assert events[0]["actor"] == ACTOR.name
    assert [e for e in audit_events(synced_url, "dedupe_run") if e["entity_id"] == "night-role"]
    assert writers == [(login,)], "merges and the run's event are the login's own"

    # The same login reads none of what it moved, and writes no audit event itself.
    for statement in (
        "SELECT * FROM core.consent",
        "SELECT purpose, status FROM core.consent",
        "SELECT payload FROM raw.records",
        "SELECT * FROM core.donation",
        "SELECT amount_minor FROM core.donation",
        "SELECT * FROM core.person",
        "SELECT details FROM audit.audit_events",
        "SELECT survivor_before FROM ops.identity_merge",
        f"UPDATE core.consent SET person_id = '{absorbed}' WHERE person_id = '{survivor}'",
        f"UPDATE core.person SET merged_into = NULL WHERE person_id = '{absorbed}'",
        "INSERT INTO audit.audit_events (occurred_at, db_role, session_role, action, entity_type, txid)"
        " VALUES (now(), 'x', 'x', 'merge', 'core.person', 0)",
    ):
        assert _refused(login_url, statement), f"cdp_dedupe may: {statement}"


def test_the_duplicate_rate_alert_is_sent_and_cleared_as_the_dedupe_login(
    synced_url: str, dedupe_login
) -> None:
    """check_duplicate_rate's data alert: new, unchanged, then cleared, each recorded in ops.alert_state."""
    with psycopg.connect(synced_url) as conn:
        conn.execute(
            "INSERT INTO ops.dedupe_run (run_id, mode, people_total, people_compared, shards, status, merged, queued,"
            " duplicate_rate, baseline_rate, rate_spike) VALUES ('spiked', 'full', 100, 100, 1, 'succeeded', 9, 3,"
            " 0.3, 0.05, true)"
        )
    login_url = dedupe_login()
    sent: list[str] = []

    def check(run_id: str):
        findings = duplicate_spike_findings(login_url, run_id, ACTOR)
        return alert_once(login_url, scope="dedupe_spike:", title="Duplicates", run_id=run_id, findings=findings,
                          send=sent.append, actor=ACTOR)  # fmt: skip

    first, again = check("spiked"), check("spiked")
    with psycopg.connect(synced_url) as conn:
        conn.execute("UPDATE ops.dedupe_run SET rate_spike = false WHERE run_id = 'spiked'")
    cleared = check("spiked")

    assert first.sent and first.new_or_changed == ("dedupe_spike:duplicate_rate",)
    assert not again.sent and again.unchanged == ("dedupe_spike:duplicate_rate",)
    assert cleared.sent and cleared.cleared == ("dedupe_spike:duplicate_rate",)
    assert len(sent) == 2
    with psycopg.connect(synced_url) as conn:
        state = conn.execute(
            "SELECT active, times_seen FROM ops.alert_state WHERE alert_key = 'dedupe_spike:duplicate_rate'"
        ).fetchone()
    assert state == (False, 2)


@pytest.mark.parametrize("dag_id", ["cdp_dedupe", "cdp_reconcile"])
def test_a_scheduled_run_asks_whether_the_first_sync_is_done_as_its_familys_login(
    synced_url: str, dedupe_login, monkeypatch: pytest.MonkeyPatch, dag_id: str
) -> None:
    """Every task's pre_execute (default_args(after_first_sync=True)) connects as the family login too."""
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", UNREACHABLE)
    monkeypatch.setenv(f"AIRFLOW_CONN_WAREHOUSE_{dag_id.removeprefix('cdp_').upper()}", dedupe_login(dag_id))
    scheduled = SimpleNamespace(run_type="scheduled", dag_id=dag_id)

    with psycopg.connect(synced_url) as conn:
        conn.execute("DELETE FROM ops.sync_run")
    with pytest.raises(AirflowSkipException):
        skip_before_first_complete_sync(scheduled)

    with psycopg.connect(synced_url) as conn:
        for spec in SCHEDULED_SPECS:
            source, stream = spec.key.split(".", 1)
            conn.execute(
                "INSERT INTO ops.sync_run (run_id, source, stream, window_end, started_at)"
                " VALUES ('scheduled__first', %s, %s, now(), now())",
                (source, stream),
            )
    skip_before_first_complete_sync(scheduled)  # the first complete sync is there: the run goes ahead


def test_every_column_a_merge_moves_is_movable_by_the_merge_function(synced_url: str) -> None:
    """ops.merge_people moves every foreign key to core.person as cdp_definer: a table added later with one
    needs the grant in its revision, or every merge of a person with such a row fails."""
    with psycopg.connect(synced_url) as conn:
        references = conn.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " JOIN pg_class r ON r.oid = c.conrelid"
            " WHERE c.contype = 'f' AND c.confrelid = 'core.person'::regclass"
            " AND r.relnamespace = 'core'::regnamespace AND array_length(c.conkey, 1) = 1"
        ).fetchall()
        missing = [
            f"{table}.{column}"
            for table, column in references
            if not conn.execute(
                "SELECT has_column_privilege('cdp_definer', %s, %s, 'UPDATE')", (table, column)
            ).fetchone()[0]
        ]
    assert len(references) > 10
    assert missing == []


@pytest.mark.slow
def test_the_dedupe_dag_runs_as_its_own_login(
    load_dag, synced_url: str, dedupe_login, monkeypatch: pytest.MonkeyPatch, anchor_file
) -> None:
    """The DAG with only its family connection: every task (and the audit anchor after each) as cdp_dedupe."""
    first, second = _duplicates_with_consent_and_a_gift(synced_url)
    login_url = dedupe_login()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", UNREACHABLE)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEDUPE", login_url)

    dag_run = load_dag("cdp_dedupe").test(run_conf={"full": True, "shard_size": 400}, logical_date=None)

    assert dag_run.state == "success"
    with psycopg.connect(synced_url) as conn:
        status = conn.execute(
            "SELECT status FROM ops.dedupe_run WHERE run_id = %s", (dag_run.run_id,)
        ).fetchone()[0]
        merged = conn.execute(
            "SELECT count(*) FROM ops.identity_merge WHERE %s::uuid IN (survivor_id, absorbed_id)"
            " AND %s::uuid IN (survivor_id, absorbed_id) AND run_id = %s",
            (first, second, dag_run.run_id),
        ).fetchone()[0]
        consent_owners = conn.execute(
            "SELECT count(DISTINCT person_id) FROM core.consent WHERE source_record_id LIKE 'role-test-%%'"
        ).fetchone()[0]
        logins = conn.execute(
            "SELECT DISTINCT session_role FROM audit.audit_events WHERE dag_id = 'cdp_dedupe'"
        ).fetchall()
        head = conn.execute("SELECT max(seq) FROM audit.audit_events").fetchone()[0]
    assert (status, merged, consent_owners) == ("succeeded", 1, 1)
    assert logins == [(urlsplit(login_url).username,)]
    # The anchor step after each task read the head as the same login (a callback's failure would not fail
    # the run: the file says it worked).
    anchors = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert anchors and anchors[-1]["seq"] == head and anchors[-1]["run_id"] == dag_run.run_id
