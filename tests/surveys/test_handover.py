"""The hand-over of recorded invitations to the survey tool (issue 18, part 2), against a real warehouse (as the
pipeline's login, cdp_loader) and the sandbox's SurveyMonkey over HTTP: each invitation handed over once across
re-runs and backfills, consent re-checked at hand-over, a vendor error kept with its reason and retried, answers
linked back by the recipient the hand-over recorded, and Typeform / Zigpoll prefilled links in a 0600 segment."""

from __future__ import annotations

import csv
import json
import stat
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from survey_world import build_week

from cdp.sources.base import SourceSettings, TransientError
from cdp.surveys.handover import HandoverConfigError, hand_over, inviter_for
from cdp.surveys.sampling import draw_week
from cdp.warehouse import Actor
from cdp_sandbox import surveymonkey as fake
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("test:surveys")
WEEK = date(2026, 11, 16)
FIELD = "5"  # the contact custom field that carries the invitation id
MATERIAL = Path(__file__).resolve().parents[1] / "vendor_material" / "surveymonkey"


def material(name: str):
    return json.loads((MATERIAL / name).read_text())


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(World(seed=5, learners=40)) as server:
        yield server


@pytest.fixture
def book(sandbox):
    """The sandbox SurveyMonkey's invitations, emptied for each test."""
    state = fake.invitations(sandbox.apis)
    state.__init__()
    sandbox.faults.clear()
    return state


def _settings(sandbox, **extra) -> SourceSettings:
    return sandbox.settings(
        "surveymonkey", invitation_field=FIELD, max_attempts=2, retry_base_delay=0.01, **extra
    )


def _draw(url: str, week: date, tool: str, sizes: dict[str, int], seed: int, courses=None) -> dict[str, str]:
    """Completers built and drawn for ``tool`` at 50%: invitation id -> email."""
    with psycopg.connect(url) as conn:
        built = build_week(conn, week, sizes, seed=seed, courses=courses)
    sample = draw_week(url, week, actor=ACTOR, survey_key="s-handover", tool=tool, fraction=0.5)
    assert sample.sampled > 0
    with psycopg.connect(url) as conn:
        emails = dict(conn.execute(
            "SELECT i.invitation_id::text, p.email FROM ops.survey_invitation i JOIN core.person p USING (person_id)"
            " WHERE i.sample_week = %s", (week,)).fetchall())  # fmt: skip
    emails["_courses"] = built.courses  # type: ignore[assignment]
    return emails


def _ledger(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT invitation_id::text, outcome, reason, tool_ref, attempts, handed_over_at IS NOT NULL"
            " FROM ops.survey_handover")}  # fmt: skip


def _attempts(url: str, invitation_id: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT outcome FROM ops.survey_handover_attempt WHERE invitation_id = %s ORDER BY attempt_id",
            (invitation_id,))]  # fmt: skip


def _sent_emails(book) -> list[str]:
    """Every email a sent message reached (one entry per recipient)."""
    by_recipient = {r: c for m in book.messages.values() for c, r in m["recipients"].items()}
    return [book.contacts[by_recipient[r]]["email"] for ids in book.sent.values() for r in ids]


def test_surveymonkey_hands_each_invitation_over_once_across_reruns_and_backfills(
    warehouse_url: str, logins, sandbox, book
) -> None:
    loader = logins("cdp_loader")
    week = _draw(warehouse_url, WEEK, "surveymonkey", {"A": 60, "B": 20}, seed=31)
    courses = week.pop("_courses")
    result = hand_over(loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox), survey_key="s-handover",
                       run_id="r1")  # fmt: skip
    ledger = _ledger(warehouse_url)
    assert result.handed_over == result.due == len(week) and result.failed == result.not_eligible == 0
    assert {i for i, row in ledger.items() if row[0] == "handed_over" and row[3] == 1 and row[4]} == set(week)
    # Each person reached once, by one sent message, with the invitation id in the contact's custom field.
    assert sorted(_sent_emails(book)) == sorted(week.values()) and len(book.sent) == 1
    by_email = {c["email"]: c for c in book.contacts.values()}
    assert {i: by_email[e]["custom_fields"][FIELD] for i, e in week.items()} == {i: i for i in week}
    # The recorded tool id is the recipient SurveyMonkey made for that person.
    assert {i: ledger[i][2] for i in week} == {i: book.recipient_of(i, FIELD) for i in week}

    # A re-run hands over nothing and sends nothing.
    again = hand_over(
        loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox), survey_key="s-handover"
    )
    assert again.due == again.handed_over == 0 and len(book.sent) == 1 and _ledger(warehouse_url) == ledger

    # A backfill of an earlier week: only its invitations go, in a message of their own; nobody twice.
    earlier = _draw(
        warehouse_url, WEEK - timedelta(weeks=3), "surveymonkey", {"A": 40}, seed=32, courses=courses
    )
    earlier.pop("_courses")
    backfill = hand_over(loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox),
                         survey_key="s-handover")  # fmt: skip
    assert backfill.handed_over == len(earlier) and len(book.sent) == 2
    sent = _sent_emails(book)
    assert len(sent) == len(set(sent)) == len(week) + len(earlier)
    assert all(_attempts(warehouse_url, i) == ["sending", "handed_over"] for i in [*week, *earlier])


def test_consent_withdrawn_between_draw_and_hand_over_is_recorded_and_never_handed_over(
    warehouse_url: str, logins, sandbox, book
) -> None:
    week = _draw(warehouse_url, WEEK, "surveymonkey", {"A": 60}, seed=33)
    week.pop("_courses")
    withdrawn = sorted(week)[:3]
    with psycopg.connect(warehouse_url) as conn:
        for invitation_id in withdrawn:
            conn.execute(
                "INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id,"
                " stated_at) SELECT person_id, 'surveys', 'withdrawn', 'consent', 'moodle', %s, now()"
                " FROM ops.survey_invitation WHERE invitation_id = %s",
                (str(uuid.uuid4()), invitation_id),
            )
    result = hand_over(logins("cdp_loader"), actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox),
                       survey_key="s-handover")  # fmt: skip
    ledger = _ledger(warehouse_url)
    assert result.not_eligible == 3 and result.handed_over == len(week) - 3
    for invitation_id in withdrawn:
        outcome, reason, tool_ref, _attempts_, handed = ledger[invitation_id]
        assert outcome == "not_eligible" and "outreach_eligible" in reason and tool_ref is None and not handed
    reached = {c["email"] for c in book.contacts.values()}
    assert not reached & {week[i] for i in withdrawn} and set(_sent_emails(book)) == reached
    # Final: a later run neither retries nor changes them.
    hand_over(logins("cdp_loader"), actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox),
              survey_key="s-handover")  # fmt: skip
    assert _ledger(warehouse_url) == ledger


def test_a_vendor_error_is_kept_with_its_reason_and_retried_on_the_next_run(
    warehouse_url: str, logins, sandbox, book
) -> None:
    loader = logins("cdp_loader")
    week = _draw(warehouse_url, WEEK, "surveymonkey", {"A": 40}, seed=34)
    week.pop("_courses")
    sandbox.faults.add(Fault("server_error", "surveymonkey", "collectors", times=10, status=503))
    with pytest.raises(TransientError, match="503"):
        hand_over(
            loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox), survey_key="s-handover"
        )
    ledger = _ledger(warehouse_url)
    assert set(ledger) == set(week) and not book.sent
    assert all(row[0] == "failed" and "503" in row[1] and row[3] == 1 for row in ledger.values())

    # One person has opted out at SurveyMonkey meanwhile: kept failed with the reason, the others go.
    opted = sorted(week)[0]
    book.opted_out.add(week[opted].lower())
    sandbox.faults.clear()
    retry = hand_over(
        loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox), survey_key="s-handover"
    )
    ledger = _ledger(warehouse_url)
    assert retry.due == len(week) and retry.handed_over == len(week) - 1 and retry.failed == 1
    assert ledger[opted][:2] == ("failed", "SurveyMonkey refused the recipient: opted_out")
    assert all(ledger[i][0] == "handed_over" and ledger[i][3] == 2 for i in week if i != opted)
    assert _attempts(warehouse_url, sorted(week)[1]) == ["failed", "sending", "handed_over"]
    assert sorted(_sent_emails(book)) == sorted(e for i, e in week.items() if i != opted)


def test_an_unconfirmed_send_is_never_sent_again(warehouse_url: str, logins, sandbox, book) -> None:
    """The send answered a 5xx: the invitations stay 'sending', and a re-run leaves them alone."""
    loader = logins("cdp_loader")
    week = _draw(warehouse_url, WEEK, "surveymonkey", {"A": 30}, seed=35)
    week.pop("_courses")
    original = fake.Invitations._handle

    def send_times_out(self, path, body):  # the sandbox sends, the answer is lost
        answer = original(self, path, body)
        return (
            fake._error(504, "1050", "Gateway Timeout", "upstream timeout")
            if path.endswith("/send")
            else answer
        )

    fake.Invitations._handle = send_times_out
    try:
        with pytest.raises(TransientError, match="may be sent"):
            hand_over(
                loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox), survey_key="s-handover"
            )
    finally:
        fake.Invitations._handle = original
    assert {row[0] for row in _ledger(warehouse_url).values()} == {"sending"} and len(book.sent) == 1
    rerun = hand_over(
        loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox), survey_key="s-handover"
    )
    assert rerun.due == 0 and rerun.unconfirmed == len(week) and len(book.sent) == 1


def test_answers_link_back_by_the_recipient_the_hand_over_recorded(
    warehouse_url: str, logins, sandbox, book
) -> None:
    week = _draw(warehouse_url, WEEK, "surveymonkey", {"A": 40}, seed=36)
    week.pop("_courses")
    hand_over(logins("cdp_loader"), actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox),
              survey_key="s-handover")  # fmt: skip
    answered = sorted(week)[:4]
    with psycopg.connect(warehouse_url) as conn:
        for n, recipient_id in enumerate([book.recipient_of(i, FIELD) for i in answered] + ["0", "999"]):
            record = f"sm-{n}"
            conn.execute(
                "INSERT INTO core.survey_response (survey_id, submitted_at, answers, source, source_record_id)"
                " VALUES (%s, now(), '{}', 'surveymonkey', %s)",
                (fake.SURVEY_ID, record),
            )
            # As /responses/bulk lands it: recipient_id, no custom variable (an email collector's answer).
            conn.execute(
                "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
                " VALUES ('surveymonkey', 'responses', %s, 'r', %s)",
                (record, json.dumps({"id": record, "recipient_id": recipient_id, "custom_variables": {}})),
            )
        links = dict(
            conn.execute(
                "SELECT r.source_record_id, l.invitation_id::text FROM ops.survey_response_invitation l"
                " JOIN core.survey_response r USING (survey_response_id) WHERE l.source = 'surveymonkey'"
            ).fetchall()
        )
        responded = {r[0] for r in conn.execute(
            "SELECT invitation_id::text FROM mart.survey_invitation_outcome WHERE responded")}  # fmt: skip
    assert links == {f"sm-{n}": i for n, i in enumerate(answered)} | {"sm-4": None, "sm-5": None}
    assert responded == set(answered)


def test_typeform_and_zigpoll_links_go_out_as_a_private_segment_of_consented_people(
    warehouse_url: str, logins, sandbox, tmp_path: Path
) -> None:
    loader = logins("cdp_loader")
    typeform = _draw(warehouse_url, WEEK, "typeform", {"A": 40}, seed=37)
    courses = typeform.pop("_courses")
    withdrawn = sorted(typeform)[0]
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at)"
            " SELECT person_id, 'surveys', 'withdrawn', 'consent', 'moodle', 'w1', now() FROM ops.survey_invitation"
            " WHERE invitation_id = %s", (withdrawn,))  # fmt: skip
    settings = SourceSettings(
        "https://api.typeform.com", "t", {"form_id": "AbC123", "form_host": "acme.typeform.com"}
    )
    result = hand_over(loader, actor=ACTOR, tool="typeform", settings=settings, survey_key="s-handover",
                       segment_dir=tmp_path)  # fmt: skip
    (segment,) = tmp_path.iterdir()
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600 and result.batch_ref == str(segment)
    rows = list(csv.DictReader(segment.open()))
    assert list(rows[0]) == [
        "invitation_id",
        "email",
        "given_name",
        "family_name",
        "sample_week",
        "survey_link",
    ]
    assert {r["invitation_id"]: r["email"] for r in rows} == {
        i: e for i, e in typeform.items() if i != withdrawn
    }
    assert all(r["survey_link"] == f"https://acme.typeform.com/to/AbC123#invitation_id={r['invitation_id']}"
               for r in rows)  # fmt: skip
    ledger = _ledger(warehouse_url)
    assert ledger[withdrawn][0] == "not_eligible"
    assert all(ledger[r["invitation_id"]][:3] == ("handed_over", None, r["survey_link"]) for r in rows)
    # A re-run writes no second segment.
    assert hand_over(loader, actor=ACTOR, tool="typeform", settings=settings, survey_key="s-handover",
                     segment_dir=tmp_path).due == 0 and len(list(tmp_path.iterdir())) == 1  # fmt: skip

    zigpoll = _draw(warehouse_url, WEEK + timedelta(weeks=1), "zigpoll", {"A": 20}, seed=38, courses=courses)
    zigpoll.pop("_courses")
    page = SourceSettings(
        "https://v1.zigpoll.com", "z", {"survey_page_url": "https://example.org/feedback?lang=en"}
    )
    hand_over(
        loader,
        actor=ACTOR,
        tool="zigpoll",
        settings=page,
        survey_key="s-handover",
        segment_dir=tmp_path / "z",
    )
    (segment,) = (tmp_path / "z").iterdir()
    links = {r["invitation_id"]: r["survey_link"] for r in csv.DictReader(segment.open())}
    assert links == {i: f"https://example.org/feedback?lang=en&invitation_id={i}" for i in zigpoll}


@pytest.mark.parametrize(
    ("tool", "extra", "named"),
    [
        ("surveymonkey", {"survey_id": "1"}, "invitation_field"),
        ("surveymonkey", {"invitation_field": "5"}, "survey_id"),
        ("surveymonkey", {"survey_id": "1", "invitation_field": "7"}, "invitation_field"),
        ("typeform", {}, "form_id"),
        ("typeform", {"form_id": "x", "form_host": "https://a.typeform.com/to"}, "form_host"),
        ("zigpoll", {}, "survey_page_url"),
        ("zigpoll", {"survey_page_url": "http://example.org/p"}, "survey_page_url"),
    ],
)
def test_a_missing_or_unusable_setting_is_a_clear_error_naming_it(tool: str, extra: dict, named: str) -> None:
    with pytest.raises(HandoverConfigError, match=rf"{tool} connection: extra\['{named}'\]"):
        inviter_for(tool, SourceSettings("https://example.org", "token", extra))


def test_the_ledger_refuses_a_second_hand_over_whoever_calls(
    warehouse_url: str, logins, sandbox, book
) -> None:
    loader = logins("cdp_loader")
    week = _draw(warehouse_url, WEEK, "surveymonkey", {"A": 20}, seed=39)
    week.pop("_courses")
    hand_over(loader, actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox), survey_key="s-handover")
    invitation_id = sorted(week)[0]
    with psycopg.connect(loader, autocommit=True) as conn:
        now = conn.execute("SELECT ops.record_survey_handover(%s, 'surveymonkey', 'sending', NULL, 'x', 'y', 'z')",
                           (invitation_id,)).fetchone()[0]  # fmt: skip
        assert now == "handed_over"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE ops.survey_handover SET outcome = 'failed', reason = 'x'")
    assert _attempts(warehouse_url, invitation_id)[-1] == "refused"
    assert _ledger(warehouse_url)[invitation_id][0] == "handed_over"


def test_the_sandbox_invitation_answers_have_the_documented_shape(sandbox, book) -> None:
    """Each write endpoint, asked with the reference's own example request, answers with the documented keys."""
    settings = _settings(sandbox)
    from cdp.sources.surveymonkey import SurveyMonkeyClient

    http = SurveyMonkeyClient(settings).http

    def post(path: str, body: dict) -> dict:
        return http.request("POST", path, json=body).json()

    def keys(value) -> set[str]:
        return set(value) if isinstance(value, dict) else set()

    created = post("/contact_lists", {"name": "My Contact List"})
    assert keys(material("contact_list_create_response.json")) == keys(created)
    added = post(f"/contact_lists/{created['id']}/contacts/bulk", material("contacts_bulk_request.json"))
    documented = material("contacts_bulk_response.json")
    assert keys(documented) == keys(added) and keys(documented["succeeded"][0]) == keys(added["succeeded"][0])
    assert added["succeeded"][0]["custom_fields"] == documented["succeeded"][0]["custom_fields"]
    collector = post(f"/surveys/{fake.SURVEY_ID}/collectors", {"type": "email"})
    assert keys(material("collector_create_response.json")) == keys(collector)
    message = post(f"/collectors/{collector['id']}/messages", {"type": "invite"})
    assert keys(material("message_create_response.json")) == keys(message) and message["status"] == "not_sent"
    request = material("recipients_bulk_request.json")
    request["contact_ids"] = [added["succeeded"][0]["id"], "1234"]
    recipients = post(f"/collectors/{collector['id']}/messages/{message['id']}/recipients/bulk", request)
    documented = material("recipients_bulk_response.json")
    assert keys(documented) == keys(recipients) and keys(documented["succeeded"][0]) == keys(
        recipients["succeeded"][0]
    )
    assert recipients["invalids"] == ["1234"]
    sent = post(
        f"/collectors/{collector['id']}/messages/{message['id']}/send", material("message_send_request.json")
    )
    assert keys(material("message_send_response.json")) == keys(sent) and sent["is_scheduled"] is True
    again = http.session.post(
        http.url(f"/collectors/{collector['id']}/messages/{message['id']}/send"), json={}
    )
    assert again.status_code == 400 and keys(again.json()["error"]) == keys(material("error.json")["error"])


def test_the_hand_over_asks_surveymonkey_only_what_the_reference_documents(
    warehouse_url: str, logins, sandbox, book
) -> None:
    """Every request body the inviter sends uses only the documented request arguments."""
    _draw(warehouse_url, WEEK, "surveymonkey", {"A": 20}, seed=40)
    seen: list[tuple[str, dict]] = []
    original = fake.Invitations._handle

    def recording(self, path, body):
        seen.append((path, body))
        return original(self, path, body)

    fake.Invitations._handle = recording
    try:
        hand_over(logins("cdp_loader"), actor=ACTOR, tool="surveymonkey", settings=_settings(sandbox),
                  survey_key="s-handover")  # fmt: skip
    finally:
        fake.Invitations._handle = original
    documented_contact = set(material("contacts_bulk_request.json")["contacts"][0])
    arguments = {  # the reference's "Request Body Arguments for POST" tables
        "contact_lists": {"name"},
        "contacts/bulk": {"contacts", "update_existing"},
        "collectors": {"type", "name", "sender_email", "thank_you_message", "redirect_url"},
        "messages": {"type", "subject", "body_text", "body_html", "recipient_status", "is_branding_enabled"},
        "recipients/bulk": set(material("recipients_bulk_request.json")),
        "send": set(material("message_send_request.json")),
    }
    kinds = []
    for path, body in seen:
        kind = next(k for k in ("contacts/bulk", "recipients/bulk", "send", "messages", "collectors", "contact_lists")
                    if path.endswith(k))  # fmt: skip
        kinds.append(kind)
        assert set(body) <= arguments[kind], (path, body)
        for contact in body.get("contacts", []):
            assert set(contact) <= documented_contact and set(contact["custom_fields"]) == {FIELD}
    assert kinds == ["contact_lists", "contacts/bulk", "collectors", "messages", "recipients/bulk", "send"]


def test_the_setup_check_asks_for_the_hand_overs_field_and_scopes(sandbox) -> None:
    from cdp.sources.surveymonkey.check import setup_findings

    assert setup_findings(_settings(sandbox)) == []
    clash = setup_findings(sandbox.settings("surveymonkey", invitation_field=fake.CONSENT_FIELD))
    assert [(f.item, f.problem) for f in clash] == [
        ("extra invitation_field", "is the consent field: the hand-over would overwrite consent")
    ]
    wrong = setup_findings(sandbox.settings("surveymonkey", invitation_field="9"))
    assert [f.item for f in wrong] == ["extra invitation_field"] and "SETUP.md" in wrong[0].setup_step
