"""The sandbox's registration form, sending as it does in `make run`, through the real intake into the
warehouse: every well-formed submission lands as a person the generator's truth names, every malformed one is
quarantined, and a redelivery lands nothing twice."""

from __future__ import annotations

from datetime import date

import psycopg
from webhook_requests import SECRETS

from cdp.sync.specs import BY_KEY
from cdp.warehouse import Actor
from cdp.webhooks import stream as webhook_stream
from cdp_sandbox.formats import DAY, to_epoch
from cdp_sandbox.generator import World
from cdp_sandbox.registration import WebhookSender

SPEC = BY_KEY["registration.submissions"]
# A past reference day: the intake refuses a submission dated after its own clock, so the test's clock,
# which runs a week past the reference day, must stay behind the real one.
TODAY = date(2026, 11, 2)


def test_the_live_sandbox_forms_webhooks_land_through_the_intake(client, warehouse_url: str) -> None:
    moment = [to_epoch(TODAY) + 10]
    world = World(seed=11, learners=600, today=TODAY, live=True, malformed_rate=0.05, clock=lambda: moment[0])

    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        return client.post(url, content=body, headers=headers).status_code

    sender = WebhookSender(world, "/registration", SECRETS["registration"], send=send)
    moment[0] += 7 * DAY
    taken = sender.tick()
    submissions = dict(world.truth.person_map("registration", "submissions"))
    sent = {submission for submission, _ in sender.deliveries}
    malformed = world.truth.malformed("registration", "submissions")
    assert (
        taken
        == len(sent)
        == len(submissions) - world.table("registration", "submissions").count(None, to_epoch(TODAY))
    )
    assert [status for _, status in sender.deliveries] == [200] * taken

    result = webhook_stream.process_pending(
        warehouse_url, SPEC, actor=Actor("test-sandbox-form"), run_id="r1"
    )
    bad = {submission for submission in sent if submission in malformed}
    assert bad, "this seed's week has malformed submissions"
    assert (result.rows_read, result.rows_quarantined) == (taken, len(bad))
    with psycopg.connect(warehouse_url) as conn:
        landed = dict(
            conn.execute(
                "SELECT s.source_record_id, p.email_normalized FROM core.person_source_id s"
                " JOIN core.person p USING (person_id) WHERE s.source = 'registration.submission'"
            ).fetchall()
        )
        quarantined = {
            row[0]
            for row in conn.execute(
                "SELECT source_record_id FROM ops.quarantine WHERE source = 'registration'"
            ).fetchall()
        }
    assert set(landed) == sent - bad and quarantined == bad
    for submission, email in landed.items():  # the person the truth names, by the address they gave
        person = int(submissions[submission][1:])
        assert email == world.email(person).lower()

    # The form redelivers (a replay from its console): the intake takes it, the warehouse holds it once.
    sender.deliver([int(world.table("registration", "submissions").index_of(s)) for s in sorted(sent)][:5])
    webhook_stream.process_pending(warehouse_url, SPEC, actor=Actor("test-sandbox-form"), run_id="r2")
    with psycopg.connect(warehouse_url) as conn:
        again = conn.execute(
            "SELECT count(*) FROM core.person_source_id WHERE source = 'registration.submission'"
        ).fetchone()[0]
    assert again == len(landed)
