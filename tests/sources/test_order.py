"""Stream order comes from what each stream declares (`after=`, its wave), never from where it is listed."""

from __future__ import annotations

import pytest

from cdp.sources import validation as v
from cdp.sources.order import DependencyError, dependencies, stream_edges, sync_order, sync_plan
from cdp.sources.spec import ACTIVITY, PEOPLE_AND_REFERENCE, StreamSpec
from cdp.sync.specs import SCHEDULED_SPECS


def spec(key: str, wave: int = ACTIVITY, after: tuple[str, ...] = ()) -> StreamSpec:
    source, stream = key.split(".")
    return StreamSpec(source, stream, "core.x", wave, v.required("id"), ("x.sql",), after=after)


def keys(specs) -> list[str]:
    return [s.key for s in specs]


def test_a_stream_follows_what_it_declares_wherever_it_is_listed() -> None:
    charges = spec("pay.charges")
    refunds = spec("pay.refunds", after=("pay.charges",))
    fees = spec("pay.fees", after=("pay.refunds", "pay.charges"))
    for listed in ([charges, refunds, fees], [fees, refunds, charges], [refunds, fees, charges]):
        assert keys(sync_order(listed)) == ["pay.charges", "pay.refunds", "pay.fees"]


def test_activity_follows_every_people_and_reference_stream() -> None:
    people = spec("lms.users", PEOPLE_AND_REFERENCE)
    crm = spec("crm.contacts", PEOPLE_AND_REFERENCE, after=("lms.users",))
    gifts = spec("crm.gifts")
    assert keys(sync_order([gifts, crm, people])) == ["lms.users", "crm.contacts", "crm.gifts"]
    assert dependencies([gifts, crm, people])["crm.gifts"] == ("crm.contacts", "lms.users")


def test_independent_streams_keep_the_order_they_are_listed_in() -> None:
    a, b = spec("one.a"), spec("two.b")
    assert keys(sync_order([a, b])) == ["one.a", "two.b"]
    assert keys(sync_order([b, a])) == ["two.b", "one.a"]


def test_an_unknown_dependency_is_named() -> None:
    with pytest.raises(
        DependencyError, match=r"pay\.refunds is declared after unknown stream\(s\) pay\.charge$"
    ):
        sync_order([spec("pay.charges"), spec("pay.refunds", after=("pay.charge",))])


def test_a_stream_after_itself_and_a_stream_declared_twice_are_refused() -> None:
    with pytest.raises(DependencyError, match="pay.charges is declared after itself"):
        sync_order([spec("pay.charges", after=("pay.charges",))])
    with pytest.raises(DependencyError, match="streams declared twice: pay.charges"):
        sync_order([spec("pay.charges"), spec("pay.charges")])


def test_a_cycle_is_named_as_a_path() -> None:
    with pytest.raises(
        DependencyError, match=r"streams depend on each other in a cycle: (\w+\.\w+ -> ){3}\w+\.\w+"
    ):
        sync_order(
            [
                spec("a.x", after=("c.z",)),
                spec("b.y", after=("a.x",)),
                spec("c.z", after=("b.y",)),
                spec("d.free"),
            ]
        )


def test_a_people_stream_after_an_activity_stream_is_a_cycle_through_the_wave() -> None:
    with pytest.raises(DependencyError, match="cycle"):
        sync_order([spec("lms.users", PEOPLE_AND_REFERENCE, after=("pay.charges",)), spec("pay.charges")])


def test_tasks_that_would_wait_for_each_other_are_refused() -> None:
    # No stream cycle, but source pay's activity task needs crm's and crm's needs pay's.
    with pytest.raises(DependencyError, match="sync tasks depend on each other in a cycle"):
        sync_plan(
            [
                spec("pay.charges"),
                spec("crm.gifts", after=("pay.charges",)),
                spec("pay.refunds", after=("crm.gifts",)),
            ]
        )


def test_a_task_is_planned_after_the_tasks_it_waits_for() -> None:
    # crm's first stream needs nothing, its second needs pay's: the crm task still comes after pay's.
    plan = sync_plan([spec("crm.notes"), spec("crm.gifts", after=("pay.charges",)), spec("pay.charges")])
    assert [(task.source, task.keys, task.upstream) for task in plan] == [
        ("pay", ("pay.charges",), ()),
        ("crm", ("crm.notes", "crm.gifts"), (("pay", ACTIVITY),)),
    ]


def test_the_registry_plans_todays_tasks_and_edges() -> None:
    plan = {task.name: task for task in sync_plan(SCHEDULED_SPECS)}
    people = {("moodle", 1), ("salesforce", 1), ("surveymonkey", 1), ("galaxy", 1)}
    assert {name for name in plan if name[1] == PEOPLE_AND_REFERENCE} == people
    assert set(plan["moodle", 1].upstream) == set()
    assert set(plan["salesforce", 1].upstream) == {("moodle", 1)}
    assert set(plan["surveymonkey", 1].upstream) == {("moodle", 1), ("salesforce", 1)}
    assert set(plan["galaxy", 1].upstream) == {("salesforce", 1)}
    waits_for = {
        "salesforce": {("stripe", 2)},
        "referralhero": {("stripe", 2)},
        "zendesk": {("referralhero", 2)},
    }
    for name, task in plan.items():
        if name[1] == ACTIVITY:
            assert set(task.upstream) == people | waits_for.get(name[0], set()), name
    assert plan["stripe", 2].keys == ("stripe.charges", "stripe.refunds", "stripe.balance_transactions")
    assert plan["salesforce", 2].keys == (
        "salesforce.Opportunity", "salesforce.npsp__Partial_Soft_Credit__c", "salesforce.npsp__Allocation__c",
        "salesforce.OpportunityContactRole",
    )  # fmt: skip
    assert plan["moodle", 2].keys == ("moodle.enrollments", "moodle.course_completions")
    assert plan["zigpoll", 2].keys == ("zigpoll.participants", "zigpoll.responses")


def test_the_registrys_order_does_not_depend_on_how_the_sources_are_listed() -> None:
    listed = list(SCHEDULED_SPECS)
    forward, backward = sync_order(listed), sync_order(listed[::-1])
    for order in (forward, backward):
        position = {s.key: index for index, s in enumerate(order)}
        for s in order:
            for before in dependencies(listed)[s.key]:
                assert position[before] < position[s.key], (before, s.key)


def test_stream_edges_keep_every_dependency_with_only_the_edges_not_implied() -> None:
    users = spec("lms.users", wave=PEOPLE_AND_REFERENCE)
    charges = spec("pay.charges")
    refunds = spec("pay.refunds", after=("pay.charges",))
    fees = spec("pay.fees", after=("pay.charges", "pay.refunds"))
    notes = spec("crm.notes")
    gifts = spec("crm.gifts", after=("pay.charges",))

    edges = stream_edges([fees, gifts, refunds, notes, charges, users])

    assert edges == {
        "lms.users": (),
        "crm.notes": ("lms.users",),
        "pay.charges": ("lms.users",),
        # After notes: a source's streams of one wave one at a time; the wave's edge is implied by it.
        "crm.gifts": ("crm.notes", "pay.charges"),
        "pay.refunds": ("pay.charges",),
        "pay.fees": ("pay.refunds",),  # after the charges through the refunds
    }


def test_todays_stream_edges_imply_every_declared_dependency() -> None:
    edges = stream_edges(SCHEDULED_SPECS)

    def before(key: str) -> set[str]:
        return set().union(*({up, *before(up)} for up in edges[key]))

    for key, needed in dependencies(SCHEDULED_SPECS).items():
        assert set(needed) <= before(key), key
    assert edges["stripe.refunds"] == ("stripe.charges",)
    assert edges["stripe.balance_transactions"] == ("stripe.refunds",)
