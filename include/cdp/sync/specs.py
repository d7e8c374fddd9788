"""What the sync does with each source stream: how a record is checked and which SQL moves it into ``core``.

Adding a stream to the warehouse means one entry here and one SQL file under ``sql/sync/``. Streams in
wave 1 create the people and reference rows (users, contacts, courses) that wave 2's activity records
(enrollments, completions, donations) point to, so the DAG runs wave 1 before wave 2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cdp.sync import validation as v


@dataclass(frozen=True)
class StreamSpec:
    source: str
    stream: str
    entity: str  # the core table it feeds; also the name of the Airflow Asset it updates
    wave: int
    check: v.Check
    transforms: tuple[str, ...]  # SQL files under sql/sync/, run in order on the temp table sync_batch
    person_source: str | None = None  # key space in core.person_source_id for records that are people
    # Extra named parameters for the SQL files. `people_update`: how a known person's values change when a
    # record of theirs arrives again: 'overwrite' (the source keeps the person's current details) or 'fill'
    # (only missing values are filled in, for sources whose details are typed afresh each time).
    params: tuple[tuple[str, str], ...] = ()
    # Re-read at least this far before the watermark: for a source whose records arrive late by design
    # (finance drops a month's ledger after the month), so lines dated before the watermark still land.
    lookback: timedelta = timedelta(0)

    @property
    def key(self) -> str:
        return f"{self.source}.{self.stream}"


MOODLE_PARENTAL_CONSENT = ("", "none", "pending", "verified")
RESOLVE_PEOPLE = "_resolve_people.sql"
MOODLE_REFERENCES = "_moodle_references.sql"
REGISTRATION_CONSENT = "_registration_consent.sql"  # a registration form's consent questions

SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "moodle", "users", "core.person", 1,
        v.all_of(
            v.required("id", "firstname", "email"),
            v.email("email"),
            v.moodle_custom_field("dateofbirth", lambda value: v.iso_date("value")({"value": value})),
            v.moodle_custom_field(
                "parentalconsent",
                lambda value: None if value in MOODLE_PARENTAL_CONSENT else f"unknown value {value!r} in parentalconsent",
            ),
            v.moodle_custom_field(
                "marketingconsent",
                lambda value: None if value in ("", "0", "1") else f"unknown value {value!r} in marketingconsent",
            ),
        ),
        ("moodle__users.sql", RESOLVE_PEOPLE, "moodle__users_consent.sql", REGISTRATION_CONSENT, "_land_consent.sql"),
        person_source="moodle.user",
    ),
    StreamSpec(
        "moodle", "courses", "core.course", 1,
        v.all_of(v.required("id", "fullname"), v.epoch_order("startdate", "enddate")),
        ("moodle__courses.sql",),
    ),
    StreamSpec(
        "moodle", "enrollments", "core.enrollment", 2,
        v.all_of(
            v.required("id", "userid", "courseid", "timestart"),
            v.one_of("status", (0, 1)),
            v.epoch_plausible("timestart"),
            v.epoch_order("timestart", "timeend"),
        ),
        (MOODLE_REFERENCES, "moodle__enrollments.sql"),
        params=(("course_field", "courseid"),),
    ),
    StreamSpec(
        "moodle", "course_completions", "core.course_completion", 2,
        v.all_of(
            v.required("id", "userid", "course", "timecompleted"),
            v.epoch_plausible("timecompleted"),
            v.epoch_order("timestarted", "timecompleted", zero_means_open=False),
        ),
        (MOODLE_REFERENCES, "moodle__course_completions.sql"),
        params=(("course_field", "course"),),
    ),
    StreamSpec(
        "salesforce", "Contact", "core.person", 1,
        v.all_of(
            v.required("Id", "LastName"),
            v.email("Email", optional=True),
            v.iso_date("Birthdate"),
            v.one_of("npe01__Preferred_Email__c", (None, "Personal", "Work", "Alternate")),
        ),
        ("salesforce__contact.sql", RESOLVE_PEOPLE, "salesforce__account_contacts.sql", "salesforce__account_links.sql"),
        person_source="salesforce.contact",
    ),
    StreamSpec(
        "stripe", "charges", "core.donation", 2,
        v.all_of(
            v.required("id", "amount", "currency", "created", "metadata.financial_transaction_id"),
            v.amount_minor("amount"),
            v.currency("currency"),
            v.one_of("status", ("succeeded", "pending", "failed")),
            v.email("billing_details.email", optional=True),
            lambda record: None
            if record.get("status") != "succeeded" or record.get("balance_transaction")
            else "missing required field balance_transaction (succeeded charge)",
        ),
        ("stripe__charges_people.sql", RESOLVE_PEOPLE, "stripe__charges.sql"),
        person_source="stripe.billing",
        params=(("people_update", "fill"),),
    ),
    # --- Salesforce accounts, gifts and soft credits; Stripe refunds and balance transactions; the ledger
    # Listed after the charges so that, run in this order, each finds its parent already landed; run in
    # parallel, an orphan waits in the quarantine and the engine re-tries it on the next sync.
    StreamSpec(
        "salesforce", "Account", "core.household", 1,
        v.all_of(
            v.required("Id", "Name"),
            v.one_of("npe01__SYSTEM_AccountType__c", v.NPSP_ACCOUNT_TYPES),
        ),
        ("salesforce__account.sql", "salesforce__account_links.sql", "salesforce__account_gifts.sql"),
    ),
    StreamSpec(
        "stripe", "refunds", "core.refund", 2,
        v.all_of(
            v.required("id", "amount", "charge", "currency", "created", "status"),
            v.amount_minor("amount"),
            v.currency("currency"),
            v.one_of("status", v.STRIPE_REFUND_STATUSES),
            v.epoch_plausible("created"),
        ),
        ("stripe__refunds.sql",),
    ),
    StreamSpec(
        "stripe", "balance_transactions", "core.balance_transaction", 2,
        v.all_of(
            v.required("id", "amount", "fee", "net", "currency", "created", "type", "status"),
            v.signed_amount_minor("amount"),
            v.amount_minor("fee"),
            v.signed_amount_minor("net"),
            v.net_of_fee("amount", "fee", "net"),
            v.currency("currency"),
            v.one_of("type", v.STRIPE_BALANCE_TYPES),
            v.one_of("status", ("available", "pending")),
            v.required_when("source", "type", ("charge", "payment", "refund", "payment_refund")),
            v.epoch_plausible("created"),
        ),
        ("stripe__balance_transactions.sql",),
    ),
    StreamSpec(
        "salesforce", "Opportunity", "core.donation", 2,
        v.all_of(
            v.required("Id", "Amount", "CurrencyIsoCode", "CloseDate", "StageName", "Financial_Transaction_Id__c"),
            v.decimal_amount("Amount"),
            v.currency("CurrencyIsoCode"),
            v.iso_date("CloseDate", optional=False, past=False),
            v.one_of("StageName", v.NPSP_STAGES),
        ),
        ("salesforce__opportunity.sql",),
    ),
    StreamSpec(
        "salesforce", "npsp__Partial_Soft_Credit__c", "core.donation_soft_credit", 2,
        v.all_of(
            v.required("Id", "npsp__Opportunity__c", "npsp__Contact__c", "npsp__Amount__c"),
            v.decimal_amount("npsp__Amount__c"),
            v.currency("CurrencyIsoCode"),
        ),
        ("salesforce__soft_credit.sql",),
    ),
    StreamSpec(
        "ledger", "postings", "core.ledger_posting", 2,
        v.all_of(
            v.required("transaction_id", "posting_date", "account", "amount", "currency", "reference"),
            v.decimal_text_amount("amount"),
            v.ledger_sign("amount", "account", "reference"),
            v.currency("currency"),
            v.iso_date("posting_date", optional=False),
        ),
        ("ledger__postings.sql",),
        lookback=timedelta(days=62),  # a month's drop arrives after the month; corrections re-drop the last
    ),
    # --- Surveys, consent metadata and referrals
    StreamSpec(
        "typeform", "responses", "core.survey_response", 2,
        v.all_of(
            v.required("response_id", "submitted_at", "hidden.learner_id"),
            v.iso_timestamp("submitted_at"),
            v.typeform_answer("email", v.email("answers.email")),
            v.typeform_answer("age", v.age("answers.age")),
            v.typeform_answer("may_contact", v.boolean("answers.may_contact")),
        ),
        ("typeform__responses_consent.sql", "_land_consent.sql", "typeform__responses.sql"),
    ),
    StreamSpec(
        "zigpoll", "participants", "core.consent", 2,
        v.all_of(
            v.required("_id", "createdAt", "email", "consent.status", "metadata.moodle_user_id"),
            v.email("email"),
            v.one_of("consent.status", ("granted", "declined", "withdrawn")),
            v.iso_timestamp("createdAt"),
            v.iso_timestamp("consent.collectedAt", optional=True),
        ),
        ("zigpoll__participants.sql", "_land_consent.sql", "zigpoll__participants_link.sql"),
    ),
    StreamSpec(
        "zigpoll", "responses", "core.survey_response", 2,
        v.all_of(
            v.required("_id", "createdAt", "pollId", "participantId"),
            v.iso_timestamp("createdAt"),
            v.age("metadata.age"),
        ),
        ("zigpoll__responses.sql",),
    ),
    StreamSpec(
        "referralhero", "subscribers", "core.referral", 2,
        v.all_of(
            v.required("id", "name", "email", "created_at", "status"),
            v.email("email"),
            v.one_of("status", ("confirmed", "organic", "pending", "unconfirmed")),
            v.epoch_plausible("created_at"),
            v.email("referred_by.email", optional=True),
            v.non_negative_int("unique_clicks"),
            v.non_negative_int("people_referred"),
            v.each(
                "rewards",
                v.all_of(
                    v.required("id", "name", "status"),
                    v.one_of("status", ("delivered", "pending", "redeemed", "cancelled")),
                    v.epoch_plausible("created_at"),
                ),
            ),
        ),
        ("referralhero__subscribers_people.sql", RESOLVE_PEOPLE, "referralhero__subscribers.sql"),
        person_source="referralhero.subscriber",
    ),
    # --- The support desk: tickets, their requester resolved by exact keys (never a new person), referrals
    StreamSpec(
        "zendesk", "tickets", "core.support_ticket", 2,
        v.all_of(
            v.required("id", "created_at", "updated_at", "status", "requester_id", "requester.id"),
            v.iso_timestamp("created_at"),
            v.iso_timestamp("updated_at"),
            v.one_of("status", ("new", "open", "pending", "hold", "solved", "closed", "deleted")),
            v.email("requester.email", optional=True),
        ),
        ("zendesk__tickets.sql",),
    ),
)  # fmt: skip


# --- The volunteer platform (adopted in migration phase 4): synced by the 2-hourly cdp_sync (see
# SCHEDULED_SPECS) and by `migration_phase4_platforms` before its checks, with the same engine; kept out of
# SPECS itself, which the dedupe truth and the engine tests take as "the learner and donor streams".
GALAXY_TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"


def _galaxy_time(path: str) -> v.Check:
    def check(record: Mapping[str, Any]) -> str | None:
        value = v.field(record, path)
        if value in (None, ""):
            return f"missing required field {path}"
        if not isinstance(value, str) or not re.match(GALAXY_TIME, value):
            return f"impossible date in {path}: {value!r}"
        return v.iso_timestamp(path)({path: value.replace(" ", "T") + "Z"})

    return check


def _shift_order(record: Mapping[str, Any]) -> str | None:
    start, end = record.get("shift_start"), record.get("shift_end")
    if isinstance(start, str) and isinstance(end, str) and end <= start:
        return "impossible dates: shift_end not after shift_start"
    return None


def _positive_hours(record: Mapping[str, Any]) -> str | None:
    value = record.get("hour_hours")
    if value in (None, ""):
        return "missing required field hour_hours"
    if not re.match(r"^\d+(\.\d+)?$", str(value)) or float(value) * 60 < 1:
        return f"hours not a positive decimal in hour_hours: {value!r}"
    return None


VOLUNTEER_SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "galaxy", "users", "core.volunteer", 1,
        v.all_of(
            v.required("id", "user_fname", "user_email"),
            v.email("user_email"),
            v.one_of("user_status", ("active", "inactive", "pending")),
            _galaxy_time("user_created"),
            _galaxy_time("user_updated"),
        ),
        ("galaxy__users_people.sql", RESOLVE_PEOPLE, "galaxy__users.sql"),
        person_source="galaxy.user",
        params=(("people_update", "fill"),),
    ),
    StreamSpec(
        "galaxy", "responses", "core.volunteer_shift", 2,
        v.all_of(
            v.required("id", "user_id", "need_id", "shift_id"),
            _galaxy_time("shift_start"),
            _galaxy_time("shift_end"),
            _shift_order,
            v.one_of("response_status", ("active", "inactive")),
        ),
        ("_galaxy_references.sql", "galaxy__responses.sql"),
    ),
    StreamSpec(
        "galaxy", "hours", "core.volunteer_hours", 2,
        v.all_of(
            v.required("id", "user_id", "hour_date"),
            v.iso_date("hour_date", optional=False),
            _positive_hours,
            v.one_of("hour_status", ("approved", "pending", "declined")),
        ),
        ("_galaxy_references.sql", "galaxy__hours.sql"),
    ),
)  # fmt: skip


# Streams that only arrive by webhook (no polling API, so cdp_sync has nothing to read): the webhook DAG
# feeds them through the engine like any other (cdp.webhooks.stream).
PUSH_ONLY_SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "registration", "submissions", "core.consent", 1,
        v.all_of(
            v.required("id", "submitted_at", "first_name", "email"),
            v.email("email"),
            v.iso_timestamp("submitted_at"),
            v.iso_date("date_of_birth"),
            v.boolean("consent.marketing"),
            v.one_of("consent.parental", (None, "", "none", "pending", "verified")),
        ),
        ("registration__submissions_people.sql", RESOLVE_PEOPLE, "registration__submissions_consent.sql",
         REGISTRATION_CONSENT, "_land_consent.sql"),
        person_source="registration.submission",
    ),
)  # fmt: skip

# Every stream with a polling API: what cdp_sync reads every 2 hours and cdp_count_diff counts every day.
SCHEDULED_SPECS: tuple[StreamSpec, ...] = (*SPECS, *VOLUNTEER_SPECS)

BY_KEY: dict[str, StreamSpec] = {spec.key: spec for spec in (*SPECS, *VOLUNTEER_SPECS, *PUSH_ONLY_SPECS)}


def spec_for(source: str, stream: str) -> StreamSpec:
    try:
        return BY_KEY[f"{source}.{stream}"]
    except KeyError:
        raise KeyError(f"stream {source}.{stream} has no sync spec; add one in cdp/sync/specs.py") from None
