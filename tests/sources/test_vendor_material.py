"""The vendors' own material (tests/vendor_material/) replayed through connector → validation → SQL → core,
and the sandbox's answers checked against the same material: a field the vendor does not promise is never
required, and what the sandbox serves beyond the vendor's documents is a declared assumption."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import yaml

from cdp.sources import referralhero, zigpoll
from cdp.sources.base import SourceSettings
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox import referralhero as sandbox_referralhero
from cdp_sandbox import zigpoll as sandbox_zigpoll
from cdp_sandbox.generator import World
from tests.sources.vendor_replay import MATERIAL, ReplayServer, material

ACTOR = Actor("pytest")
FAST = {"max_attempts": 1, "retry_base_delay": 0.0, "timeout": 5}
END = datetime(2030, 1, 1, tzinfo=UTC)

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "object": (dict,),
    "timestamp": (int,), "array": (list,),
}  # fmt: skip


def documented_type_holds(value: Any, documented: str) -> bool:
    if (
        value is None
    ):  # vendors send null for a field with no value (promoted_at of a subscriber never promoted)
        return True
    if documented != "boolean" and isinstance(value, bool):
        return False
    return isinstance(value, JSON_TYPES[documented])


def one_row(url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchone()


# ---------------------------------------------------------------- ReferralHero
def referralhero_routes(subscribers: list[dict]) -> dict[str, Any]:
    objects = material("referralhero", "objects.json")
    envelope = copy.deepcopy(objects["lists_retrieved_envelope"])
    envelope["data"] = {
        "response": "subscribers_retrieved",
        "subscribers": subscribers,
        "pagination": {
            "total_pages": 1,
            "current_page": 1,
            "per_page": 50,
            "total_objects": len(subscribers),
        },
    }
    return {"/api/v2/lists/MFxxxxxxxxx/subscribers": envelope}


def referralhero_settings(url: str) -> SourceSettings:
    return SourceSettings(url, "token", {"list_uuid": "MFxxxxxxxxx", **FAST})


def test_referralhero_documented_subscribers_land_in_core_with_nothing_quarantined(
    warehouse_url: str,
) -> None:
    examples = material("referralhero", "objects.json")["subscriber_examples"]
    assert not {"unique_clicks", "rewards"} & {key for s in examples for key in s}, (
        "the documented object has neither"
    )
    with ReplayServer(referralhero_routes(examples)) as vendor:
        stream = referralhero.SubscribersStream(
            referralhero.ReferralHeroClient(referralhero_settings(vendor.url))
        )
        result = sync_stream(
            warehouse_url,
            stream,
            spec_for("referralhero", "subscribers"),
            actor=ACTOR,
            run_id="rh-docs",
            interval_end=END,
        )
        assert vendor.requests[0][3]["authorization"] == "Bearer token"

    assert (result.rows_read, result.rows_quarantined) == (2, 0)
    count, linked, clicks = one_row(
        warehouse_url,
        "SELECT count(*), count(*) FILTER (WHERE referrer_person_id IS NOT NULL), count(clicks)"
        " FROM core.referral WHERE source = 'referralhero'",
    )
    assert (count, linked, clicks) == (2, 1, 0), (
        "Grace is linked to Ada; no clicks were promised, none invented"
    )
    assert one_row(warehouse_url, "SELECT count(*) FROM ops.quarantine WHERE source = 'referralhero'")[0] == 0


def test_referralhero_window_follows_last_updated_at_not_created_at() -> None:
    examples = material("referralhero", "objects.json")["subscriber_examples"]
    ada = examples[0]  # created 1487661494, updated a day later (1487747894)
    window = (
        datetime.fromtimestamp(ada["last_updated_at"] - 60, UTC),
        datetime.fromtimestamp(ada["last_updated_at"] + 60, UTC),
    )
    with ReplayServer(referralhero_routes(examples)) as vendor:
        stream = referralhero.SubscribersStream(
            referralhero.ReferralHeroClient(referralhero_settings(vendor.url))
        )
        got = [s["id"] for page in stream.read(*window) for s in page]
        before_the_change = [
            s["id"] for page in stream.read(window[0].replace(year=2016), window[0]) for s in page
        ]
    assert ada["created_at"] < window[0].timestamp()
    assert sorted(got) == [1001, 1002], "Ada changed in the window although she joined before it"
    assert 1001 not in before_the_change


def test_sandbox_referralhero_subscribers_carry_the_documented_fields_and_types() -> None:
    documented = material("referralhero", "objects.json")["subscriber_attributes"]
    world = World(seed=5, learners=300)
    table = world.table("referralhero", "subscribers")
    served = [table.builder(i) for i in range(min(len(table), 200))]
    assert served
    for subscriber in served:
        undocumented = set(subscriber) - set(documented) - sandbox_referralhero.ASSUMED_FIELDS
        assert not undocumented, f"the sandbox serves fields nobody documented or declared: {undocumented}"
        missing = set(documented) - set(subscriber)
        assert not missing, f"the sandbox omits documented fields: {missing}"
        for name, kind in documented.items():
            if (
                name == "id"
            ):  # documented as an integer; the newer API and its clients show text ids (sub_...)
                continue
            assert documented_type_holds(subscriber[name], kind), (name, subscriber[name], kind)


@pytest.mark.parametrize("field", ["unique_clicks", "rewards", "status"])
def test_referralhero_connector_requires_only_the_key_and_the_times(field: str) -> None:
    assert field not in referralhero.SUBSCRIBER_FIELDS
    assert set(referralhero.SUBSCRIBER_FIELDS) <= set(
        material("referralhero", "objects.json")["subscriber_attributes"]
    )


# ---------------------------------------------------------------- Zigpoll
def zigpoll_schema(name: str) -> dict[str, Any]:
    spec = yaml.safe_load((MATERIAL / "zigpoll" / "openapi-gpt.trimmed.yaml").read_text())
    return spec["components"]["schemas"][name]["properties"]


def test_zigpoll_connector_requires_only_fields_of_the_openapi_schemas() -> None:
    assert set(zigpoll.REQUIRED["responses"]) <= set(zigpoll_schema("Response"))
    assert set(zigpoll.REQUIRED["participants"]) <= set(zigpoll_schema("Participant"))
    assert not {"email", "consent", "metadata"} & set(zigpoll_schema("Participant")), "the spec's participant"


def test_zigpoll_responses_shaped_by_the_openapi_land_in_core_asking_only_for_what_is_new(
    warehouse_url: str,
) -> None:
    page = material("zigpoll", "responses_examples.json")
    with ReplayServer({"/responses": page}) as vendor:
        settings = SourceSettings(
            vendor.url, "zigpoll-key", {"account_id": page["data"][0]["accountId"], **FAST}
        )
        stream = zigpoll.ZigpollStream(settings, "responses")
        first = sync_stream(
            warehouse_url,
            stream,
            spec_for("zigpoll", "responses"),
            actor=ACTOR,
            run_id="zig-docs",
            interval_end=END,
        )
        again = sync_stream(
            warehouse_url,
            stream,
            spec_for("zigpoll", "responses"),
            actor=ACTOR,
            run_id="zig-docs-2",
            interval_end=END + timedelta(days=1),
        )
        (_, path, query, headers), (*_, later_query, _) = vendor.requests[0], vendor.requests[-1]
    assert headers["authorization"] == "zigpoll-key", "the raw API key, as the spec's ApiKeyAuth"
    assert path == "/responses" and query["accountId"] == page["data"][0]["accountId"]
    assert "createdAfter" not in query, "a first sync reads everything"
    assert (first.rows_read, first.rows_quarantined) == (2, 0)
    assert again.window_start is not None
    asked_after = datetime.fromtimestamp(int(later_query["createdAfter"]) / 1000, UTC)
    assert again.window_start - timedelta(milliseconds=2) < asked_after < again.window_start, (
        "the next sync asks Zigpoll only for responses created after its window's start"
    )
    rows = one_row(
        warehouse_url,
        "SELECT count(*), count(person_id), max(age_reported) FROM core.survey_response WHERE source = 'zigpoll'",
    )
    assert rows == (2, 0, 34), "both land; their participants are not linked yet; the metadata age is kept"


def test_sandbox_zigpoll_responses_serve_the_openapi_fields_and_honour_created_after(world: World) -> None:
    documented = set(zigpoll_schema("Response"))
    table = world.table("zigpoll", "responses")
    for i in range(min(len(table), 200)):
        served = set(table.builder(i))
        assert served - documented <= sandbox_zigpoll.ASSUMED_FIELDS["responses"], served - documented


def test_sandbox_zigpoll_created_after_returns_only_later_responses(world: World, settings_for: Any) -> None:
    stream = zigpoll.ZigpollStream(settings_for("zigpoll"), "responses")
    since = datetime(2023, 10, 1, tzinfo=UTC)
    table = world.table("zigpoll", "responses")
    expected = {table.id_of(int(i)) for i in table.window(int(since.timestamp()), int(END.timestamp()))}
    pages = list(stream._pages(since))
    got = {r["_id"] for page in pages for r in page}
    assert got == expected and expected, "the API filtered the window: nothing older is walked"


# ---------------------------------------------------------------- Galaxy Digital (secondary evidence)
def galaxy_routes(examples: dict[str, Any], empty: tuple[str, ...] = ()) -> dict[str, Any]:
    def listing(name: str) -> Any:
        def answer(query: dict[str, str], headers: Any) -> tuple[int, Any]:
            if headers.get("authorization") != "Bearer example-session-token":
                return 401, {"error": "Unauthenticated."}
            rows = (
                []
                if name in empty
                else [r for r in examples[name] if int(r["id"]) > int(query.get("since_id", 0))]
            )
            return (200, {"data": rows}) if rows else (404, {"error": "No results found."})

        return answer

    listings = {f"/{name}": listing(name) for name in ("users", "responses", "hours")}
    return {"/users/login": examples["login"], **listings}


def test_galaxy_model_shaped_records_land_in_core_after_a_login_with_nothing_quarantined(
    warehouse_url: str,
) -> None:
    from cdp.sources import galaxy

    examples = material("galaxy", "examples.json")
    with ReplayServer(galaxy_routes(examples)) as vendor:
        client = galaxy.GalaxyClient(SourceSettings(vendor.url, "the-api-key", FAST))
        results = {
            s.name: sync_stream(
                warehouse_url, s, spec_for("galaxy", s.name), actor=ACTOR, run_id="gx-docs", interval_end=END
            )
            for s in (galaxy.UsersStream(client), galaxy.ResponsesStream(client), galaxy.HoursStream(client))
        }
        login = [r for r in vendor.requests if r[1] == "/users/login"]
        reads = [r for r in vendor.requests if r[1] != "/users/login"]
    assert len(login) == 1 and login[0][0] == "POST", "one login serves every stream"
    assert all(r[3]["authorization"] == "Bearer example-session-token" for r in reads), (
        "reads carry the token"
    )
    assert all(r[2]["show_inactive"] == "Yes" for r in reads), "inactive (deleted) records are asked for too"
    assert {name: (r.rows_read, r.rows_quarantined) for name, r in results.items()} == {
        "users": (1, 0),
        "responses": (1, 0),
        "hours": (2, 0),
    }
    shift = one_row(
        warehouse_url, "SELECT need_id, need_title, shift_id, ends_at - starts_at FROM core.volunteer_shift"
    )
    assert shift[:3] == ("501", "Course mentor (online)", "8801") and shift[3].seconds == 3 * 3600
    hours = one_row(
        warehouse_url,
        "SELECT array_agg(minutes ORDER BY source_record_id), array_agg(status ORDER BY"
        " source_record_id), min(served_on)::text FROM core.volunteer_hours",
    )
    assert hours == ([165, 60], ["pending", "declined"], "2024-02-10"), "entered → pending, denied → declined"


def test_galaxy_404_on_a_listing_is_an_empty_page_not_a_contract_error() -> None:
    from cdp.sources import galaxy

    examples = material("galaxy", "examples.json")
    with ReplayServer(galaxy_routes(examples, empty=("hours",))) as vendor:
        client = galaxy.GalaxyClient(SourceSettings(vendor.url, "the-api-key", FAST))
        assert list(galaxy.HoursStream(client).read(None, None)) == []
        assert galaxy.HoursStream(client).count(datetime(2020, 1, 1, tzinfo=UTC), END) == 0
        users = [r["id"] for page in galaxy.UsersStream(client).read(None, None) for r in page]
    assert users == ["7101"], "the page after the last one answers 404 and ends the listing"


def test_galaxy_refused_key_at_login_is_an_auth_error() -> None:
    from cdp.sources import galaxy
    from cdp.sources.base import AuthError

    routes = galaxy_routes(material("galaxy", "examples.json"))
    routes["/users/login"] = lambda query, headers: (401, {"error": "Unauthenticated."})
    with ReplayServer(routes) as vendor, pytest.raises(AuthError):
        list(
            galaxy.UsersStream(galaxy.GalaxyClient(SourceSettings(vendor.url, "wrong", FAST))).read(
                None, None
            )
        )


def test_sandbox_galaxy_records_carry_only_the_models_fields(world: World) -> None:
    from cdp_sandbox import volunteers

    models = material("galaxy", "models.json")
    nested = {
        "user": "userMiniObject",
        "need": "needMiniObject",
        "shift": "shiftObject",
        "groups": "groupMiniObject",
    }
    data = volunteers.of(world)
    for stream, model in (("users", "userObject"), ("responses", "responseObject"), ("hours", "hourObject")):
        table = data.tables[stream]
        for i in range(min(len(table), 100)):
            record = table.record(i)
            assert set(record) <= set(models[model]), (stream, set(record) - set(models[model]))
            for key, inner in nested.items():
                if isinstance(record.get(key), dict):
                    assert set(record[key]) <= set(models[inner]), (stream, key)


# ---------------------------------------------------------------- Zendesk
def zendesk_routes(tickets: list[dict]) -> dict[str, Any]:
    material_ = material("zendesk", "incremental_tickets.json")
    body = {**material_["envelope"], "tickets": tickets, "users": material_["users"], "end_of_stream": True}
    return {"/api/v2/incremental/tickets/cursor.json": body}


def test_zendesk_ticket_exported_as_deleted_becomes_an_audited_soft_delete(warehouse_url: str) -> None:
    from cdp.sources import zendesk

    tickets = material("zendesk", "incremental_tickets.json")["tickets"]
    extra = {"email": "agent@example.org", "referral_field_id": 360000424242, **FAST}
    spec = spec_for("zendesk", "tickets")

    def sync(batch: list[dict], run: str, end: datetime) -> Any:
        with ReplayServer(zendesk_routes(batch)) as vendor:
            stream = zendesk.TicketsStream(zendesk.ZendeskClient(SourceSettings(vendor.url, "tok", extra)))
            return sync_stream(warehouse_url, stream, spec, actor=ACTOR, run_id=run, interval_end=end)

    first = sync(tickets, "zd-1", datetime(2024, 6, 1, tzinfo=UTC))
    assert (first.rows_read, first.rows_quarantined) == (2, 0)
    deleted = {**tickets[0], "status": "deleted", "updated_at": "2024-06-02T09:00:00Z"}
    sync([deleted], "zd-2", datetime(2024, 7, 1, tzinfo=UTC))
    rows = one_row(
        warehouse_url,
        "SELECT array_agg(source_record_id ORDER BY source_record_id) FILTER (WHERE deleted_at IS NOT NULL),"
        " array_agg(status ORDER BY source_record_id), count(*) FROM core.support_ticket",
    )
    assert rows == (["35436"], ["deleted", "new"], 2), "kept, marked deleted, the other untouched"
    audited = one_row(
        warehouse_url,
        "SELECT count(*) FROM audit.audit_events e, jsonb_array_elements(e.after) AS row"
        " WHERE e.entity_type = 'core.support_ticket' AND e.action = 'update'"
        "   AND row ->> 'source_record_id' = '35436' AND row ->> 'deleted_at' IS NOT NULL",
    )[0]
    assert audited == 1, "the soft delete is recorded by the table's audit trigger"
    restored = {**tickets[0], "status": "open", "updated_at": "2024-07-02T09:00:00Z"}
    sync([restored], "zd-3", datetime(2024, 8, 1, tzinfo=UTC))
    assert one_row(warehouse_url, "SELECT count(deleted_at) FROM core.support_ticket")[0] == 0
