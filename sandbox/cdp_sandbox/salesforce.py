"""Salesforce NPSP in the sandbox: households, contacts, gifts, soft credits and contact roles, and the REST
query API that serves them (the write API is ``crm_writes``).

Salesforce (``/salesforce``) — REST API query resource, https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta
``/services/data/vXX.X/query?q=SOQL`` with ``Authorization: Bearer``; ``nextRecordsUrl`` query locators
(batch size from ``Sforce-Query-Options: batchSize=``, 200..2000); errors as a list of
``{"message", "errorCode"}``; ``Sforce-Limit-Info`` header; ``/limits`` with ``DailyApiRequests``. The SOQL
subset: ``SELECT f1, f2 | COUNT() FROM Obj [WHERE <Field> <op> <datetime> [AND ...]] [ORDER BY ...]
[LIMIT n]`` over SystemModstamp, CreatedDate and LastModifiedDate. NPSP objects as in
SalesforceFoundation/NPSP; ``Financial_Transaction_Id__c`` and ``Stripe_Charge_Id__c`` are org custom fields.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import people, stripe
from cdp_sandbox.apis import Request, Response, VendorApis, parse_time
from cdp_sandbox.core import WorldCore
from cdp_sandbox.crm_amounts import crm_amount
from cdp_sandbox.crm_writes import (
    COMPLETION_CAMPAIGN_ID,
    SalesforceWrites,
    generated_contacts,
    salesforce_error,
)
from cdp_sandbox.formats import CURRENCIES, DAY, impossible_date, iso_date, salesforce_datetime, stripe_id
from cdp_sandbox.names import PARTNER_NAMES
from cdp_sandbox.salesforce_bulk import BulkIngest
from cdp_sandbox.salesforce_org import CLIENT_ID, EXTRA_OBJECTS, SandboxOrg
from cdp_sandbox.tables import MALFORMED_REASONS, Table, salesforce_id, salesforce_index

CREDENTIAL = "00Dsandbox!AQ4AQSandboxSessionToken"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    # The connected app's client credentials (the secret is the connection's password): sessions renew.
    extra = {
        "api_version": world.ids.salesforce_api_version,
        "completion_campaign_id": COMPLETION_CAMPAIGN_ID,
        "client_id": CLIENT_ID,
    }
    return SourceSettings(f"{base_url}/salesforce", world.credentials.for_source("salesforce"), extra)


# ---------------------------------------------------------------- data
def build(world: WorldCore) -> None:
    """NPSP's tables from the people and the gifts; also ``world.contact_of_person`` and the household accounts."""
    rng = world.rng(4)
    donors = np.unique(world.donation_donor)
    in_crm = np.zeros(world.person_count, dtype=bool)
    in_crm[donors] = True
    # NPSP keeps the whole household: every member of a donor's household gets a Contact.
    in_crm |= np.isin(world.household, world.household[donors])
    in_crm[world.first_partner_contact :] = True
    crm_persons = np.nonzero(in_crm)[0]

    first_gift = np.full(world.person_count, world.end_ts, dtype=np.int64)
    np.minimum.at(first_gift, world.donation_donor, world.donation_created)
    contact_created = np.minimum(first_gift[crm_persons] - 3600, world.registered[crm_persons])
    contact_created = np.maximum(contact_created, world.start_ts)
    # Learners who donate often give under a nickname or another spelling: the cross-system duplicate.
    canonical_variant = np.where(
        (crm_persons < world.learners) & (rng.random(crm_persons.shape[0]) < 0.25),
        people.NICKNAME,
        people.CANONICAL,
    ).astype(np.int8)
    n_dups = int(round(world.duplicate_rate * 0.5 * crm_persons.shape[0]))
    dup_persons = (
        crm_persons[rng.integers(0, crm_persons.shape[0], n_dups)]
        if crm_persons.shape[0]
        else np.zeros(0, np.int64)
    )
    dup_variant = np.array(
        [
            (
                kinds := people.available_variants(
                    int(world.culture[p]), int(world.given[p]), int(world.family[p])
                )
            )[(int(world.salt[p]) + k) % len(kinds)]
            for k, p in enumerate(dup_persons.tolist())
        ],
        dtype=np.int8,
    )
    dup_created = world.draw_after(rng, np.maximum(world.registered[dup_persons], world.start_ts))
    persons = np.concatenate([crm_persons, dup_persons]).astype(np.int32)
    variants = np.concatenate([canonical_variant, dup_variant]).astype(np.int8)
    created = np.concatenate([contact_created, dup_created]).astype(np.int64)
    order = np.argsort(created, kind="stable")
    persons, variants, created = persons[order], variants[order], created[order]
    contact_of_person = np.full(world.person_count, -1, np.int64)
    first_rows = np.unique(persons, return_index=True)
    contact_of_person[first_rows[0]] = first_rows[1]
    world.contact_of_person = contact_of_person

    households = np.unique(world.household[persons])
    account_of_household = np.full(int(world.household.max()) + 1, -1, np.int64)
    account_of_household[households] = np.arange(households.shape[0])
    world.account_of_household = account_of_household
    n_hh = households.shape[0]
    hh_created = np.full(n_hh, world.end_ts, np.int64)
    np.minimum.at(hh_created, account_of_household[world.household[persons]], created)
    org_created = world.draw_times(rng, world.partners, world.start_ts - 200 * DAY, world.start_ts)
    account_created = np.concatenate([hh_created, org_created])
    world.account_households = households
    sf = world.seed_tag("sf")

    world.add_table(
        Table(
            "salesforce",
            "Account",
            "Id",
            "SystemModstamp",
            "modified",
            account_created,
            world.draw_edits(rng, account_created),
            np.full(account_created.shape[0], -1, np.int32),
            world.draw_malformed(rng, account_created.shape[0], ("missing_required",)),
            builder=lambda i: _account(world, i),
            id_of=lambda i: salesforce_id("001", sf, i),
            index_of=salesforce_index,
        )
    )
    world.add_table(
        Table(
            "salesforce",
            "Contact",
            "Id",
            "SystemModstamp",
            "modified",
            created,
            world.draw_edits(rng, created),
            persons,
            world.draw_malformed(
                rng,
                persons.shape[0],
                ("missing_required", "malformed_email", "impossible_date", "unknown_enum"),
            ),
            builder=lambda i: _contact(world, i),
            id_of=lambda i: salesforce_id("003", sf, i),
            index_of=salesforce_index,
            columns={"variant": variants},
        )
    )

    opp_donation = np.nonzero(~world.missing_in_crm)[0]
    opp_created = world.donation_created[opp_donation] + rng.integers(60, 7200, opp_donation.shape[0])
    world.add_table(
        Table(
            "salesforce",
            "Opportunity",
            "Id",
            "SystemModstamp",
            "modified",
            opp_created,
            world.draw_edits(rng, opp_created),
            world.donation_donor[opp_donation],
            world.draw_malformed(
                rng,
                opp_donation.shape[0],
                (
                    "missing_required",
                    "negative_amount",
                    "non_numeric_amount",
                    "unknown_currency",
                    "impossible_date",
                    "unknown_enum",
                ),
            ),
            builder=lambda i: _opportunity(world, i),
            id_of=lambda i: salesforce_id("006", sf, i),
            index_of=salesforce_index,
            columns={"donation": opp_donation},
        )
    )

    # Soft credits: a gift from one household member credited to another (NPSP partial soft credits).
    donors_of_opps = world.donation_donor[opp_donation]
    head = world.household_head[donors_of_opps]
    other = np.where(head != donors_of_opps, head, np.minimum(head + 1, world.person_count - 1))
    eligible = (
        (world.household_size[donors_of_opps] > 1)
        & (world.household[other] == world.household[donors_of_opps])
        & (contact_of_person[other] >= 0)
        & (rng.random(opp_donation.shape[0]) < 0.4)
    )
    soft_opps = np.nonzero(eligible)[0]
    soft_person = other[soft_opps]
    soft_created = opp_created[soft_opps] + 30
    world.add_table(
        Table(
            "salesforce",
            "npsp__Partial_Soft_Credit__c",
            "Id",
            "SystemModstamp",
            "modified",
            soft_created,
            world.draw_edits(rng, soft_created),
            soft_person.astype(np.int32),
            world.draw_malformed(rng, soft_opps.shape[0], ("missing_required", "negative_amount")),
            builder=lambda i: _soft_credit(world, i),
            id_of=lambda i: salesforce_id("a0u", sf, i),
            index_of=salesforce_index,
            columns={"opportunity": soft_opps, "person": soft_person},
        )
    )

    n_opps = opp_donation.shape[0]
    # NPSP's usual soft credit: a contact role alone (no partial soft credit), credited the gift's full amount.
    role_only = np.nonzero(
        (world.household_size[donors_of_opps] > 1)
        & (world.household[other] == world.household[donors_of_opps])
        & (contact_of_person[other] >= 0)
        & ~eligible
        & (world.rng(41).random(n_opps) < 0.3)
    )[0]
    role_opp = np.concatenate([np.arange(n_opps), soft_opps, role_only])
    role_person = np.concatenate([donors_of_opps, soft_person, other[role_only]])
    role_created = np.concatenate([opp_created + 5, soft_created, opp_created[role_only] + 40])
    world.add_table(
        Table(
            "salesforce",
            "OpportunityContactRole",
            "Id",
            "SystemModstamp",
            "modified",
            role_created,
            role_created.copy(),
            role_person.astype(np.int32),
            world.draw_malformed(rng, role_created.shape[0], ("missing_required", "unknown_enum")),
            builder=lambda i: _contact_role(world, i),
            id_of=lambda i: salesforce_id("00K", sf, i),
            index_of=salesforce_index,
            columns={
                "opportunity": role_opp,
                "person": role_person,
                "is_soft": np.arange(role_opp.shape[0]) >= n_opps,
                "role_only": np.arange(role_opp.shape[0]) >= n_opps + soft_opps.shape[0],
            },
        )
    )

    _build_funds(world, opp_created)


def _attributes(world: WorldCore, sobject: str, record_id: str) -> dict[str, str]:
    return {
        "type": sobject,
        "url": f"/services/data/{world.ids.salesforce_api_version}/sobjects/{sobject}/{record_id}",
    }


def _account(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("salesforce", "Account")]
    record_id = salesforce_id("001", world.seed_tag("sf"), i)
    n_hh = world.account_households.shape[0]
    if i < n_hh:
        head = int(world.household_head[np.searchsorted(world.household, world.account_households[i])])
        name = f"{world.name(head).family or world.name(head).given} Household"
        record_type, account_type = "012HH0000000001AAA", "Household Account"
    else:
        name = PARTNER_NAMES[i - n_hh]
        record_type, account_type = "012OR0000000001AAA", ""
    if table.malformed[i]:
        name = None
    return {
        "attributes": _attributes(world, "Account", record_id),
        "Id": record_id,
        "Name": name,
        "RecordTypeId": record_type,
        "npe01__SYSTEM_AccountType__c": account_type or None,
        "Type": "Household" if account_type else "Partner Organization",
        "IsDeleted": False,
        "CreatedDate": salesforce_datetime(int(table.created[i])),
        "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
        "SystemModstamp": salesforce_datetime(int(table.modified[i])),
    }


def _contact(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("salesforce", "Contact")]
    record_id = salesforce_id("003", world.seed_tag("sf"), i)
    person = int(table.person[i])
    variant = int(table.columns["variant"][i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    parts = world.name(person, variant)
    email = world.email(person, variant)
    if reason == "malformed_email":
        email = people.break_email(email, i)
    first: str | None = None if parts.single else parts.given
    last: str | None = parts.given if parts.single else parts.family
    if reason == "missing_required":
        last = None
    birth = (
        impossible_date(int(table.created[i])) if reason == "impossible_date" else world.birth_date(person)
    )
    account = _contact_account(world, person)
    return {
        "attributes": _attributes(world, "Contact", record_id),
        "Id": record_id,
        "AccountId": account,
        "FirstName": first,
        "LastName": last,
        "Email": email,
        "npe01__HomeEmail__c": email,
        "npe01__WorkEmail__c": None,
        "npe01__AlternateEmail__c": None,
        "npe01__Preferred_Email__c": "Carrier pigeon" if reason == "unknown_enum" else "Personal",
        "Phone": world.phone(person),
        "MobilePhone": None,
        "Birthdate": birth,
        "MailingCountry": world.country_code(person),
        "HasOptedOutOfEmail": not bool(world.marketing_opt_in[person]),
        "npsp__Deceased__c": False,
        "IsDeleted": False,
        "CreatedDate": salesforce_datetime(int(table.created[i])),
        "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
        "SystemModstamp": salesforce_datetime(int(table.modified[i])),
    }


def _contact_account(world: WorldCore, person: int) -> str:
    if person >= world.first_partner_contact:
        return salesforce_id(
            "001", world.seed_tag("sf"), world.account_households.shape[0] + int(world.partner[person])
        )
    return salesforce_id(
        "001", world.seed_tag("sf"), int(world.account_of_household[world.household[person]])
    )


def _opportunity(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("salesforce", "Opportunity")]
    record_id = salesforce_id("006", world.seed_tag("sf"), i)
    donation = int(table.columns["donation"][i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    donor = int(world.donation_donor[donation])
    contact_row = int(world.contact_of_person[donor])
    contact_id = salesforce_id("003", world.seed_tag("sf"), contact_row)
    parts = world.name(donor, int(world.tables[("salesforce", "Contact")].columns["variant"][contact_row]))
    account_id = _contact_account(world, donor)
    amount: Any = crm_amount(world, donation) / 100
    currency: Any = CURRENCIES[int(world.donation_currency[donation])].upper()
    close = iso_date(int(world.donation_created[donation]))
    stage = "Closed Won"
    if reason == "negative_amount":
        amount = -amount
    elif reason == "non_numeric_amount":
        amount = f"{amount:.2f} {currency}"
    elif reason == "unknown_currency":
        currency = "XYZ"
    elif reason == "impossible_date":
        close = impossible_date(int(world.donation_created[donation]))
    elif reason == "unknown_enum":
        stage = "Maybe Won"
    return {
        "attributes": _attributes(world, "Opportunity", record_id),
        "Id": record_id,
        "Name": f"{parts.full} Donation {close}",
        "AccountId": account_id,
        "npsp__Primary_Contact__c": contact_id,
        "Amount": amount,
        "CurrencyIsoCode": currency,
        "CloseDate": close,
        "StageName": stage,
        "IsWon": True,
        "IsClosed": True,
        "RecordTypeId": "012DO0000000001AAA",
        "Financial_Transaction_Id__c": None
        if reason == "missing_required"
        else stripe.financial_transaction_id(world, donation),
        "Stripe_Charge_Id__c": stripe_id("ch", world.seed_tag("ch"), donation),
        "IsDeleted": False,
        "CreatedDate": salesforce_datetime(int(table.created[i])),
        "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
        "SystemModstamp": salesforce_datetime(int(table.modified[i])),
    }


def _soft_credit(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("salesforce", "npsp__Partial_Soft_Credit__c")]
    record_id = salesforce_id("a0u", world.seed_tag("sf"), i)
    opp = int(table.columns["opportunity"][i])
    donation = int(world.tables[("salesforce", "Opportunity")].columns["donation"][opp])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    amount = int(world.donation_amount[donation]) / 100
    contact = salesforce_id(
        "003", world.seed_tag("sf"), int(world.contact_of_person[int(table.columns["person"][i])])
    )
    return {
        "attributes": _attributes(world, "npsp__Partial_Soft_Credit__c", record_id),
        "Id": record_id,
        "Name": f"PSC-{i + 1:06d}",
        "npsp__Opportunity__c": salesforce_id("006", world.seed_tag("sf"), opp),
        "npsp__Contact__c": None if reason == "missing_required" else contact,
        "npsp__Amount__c": -amount if reason == "negative_amount" else amount,
        "npsp__Role_Name__c": "Household Member",
        "CurrencyIsoCode": CURRENCIES[int(world.donation_currency[donation])].upper(),
        "IsDeleted": False,
        "CreatedDate": salesforce_datetime(int(table.created[i])),
        "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
        "SystemModstamp": salesforce_datetime(int(table.modified[i])),
    }


def _contact_role(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("salesforce", "OpportunityContactRole")]
    record_id = salesforce_id("00K", world.seed_tag("sf"), i)
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    soft = bool(table.columns["is_soft"][i])
    contact = salesforce_id(
        "003", world.seed_tag("sf"), int(world.contact_of_person[int(table.columns["person"][i])])
    )
    role = ("Soft Credit" if table.columns["role_only"][i] else "Household Member") if soft else "Donor"
    return {
        "attributes": _attributes(world, "OpportunityContactRole", record_id),
        "Id": record_id,
        "OpportunityId": salesforce_id("006", world.seed_tag("sf"), int(table.columns["opportunity"][i])),
        "ContactId": None if reason == "missing_required" else contact,
        "Role": "Frenemy" if reason == "unknown_enum" else role,
        "IsPrimary": not soft,
        "IsDeleted": False,
        "CreatedDate": salesforce_datetime(int(table.created[i])),
        "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
        "SystemModstamp": salesforce_datetime(int(table.modified[i])),
    }


# ---------------------------------------------------------------- funds (NPSP GAUs and allocations)
#: The org's General Accounting Units: the first is the general fund, the others restricted funds.
GAU_NAMES = ("General Fund", "Digital Skills Grant", "Literacy Fund", "Scholarship Fund")
#: What each opportunity's allocations are, by its index: planted cases the truth knows (truth.py).
ALLOCATION_CASES = ("full", "split_percent", "split_amount", "missing", "changed")
RECURRING_DONATION_ID = "a09SB0000000001AAA"  # npe03__Recurring_Donation__c with an allocation template


def allocation_case(opportunity: int) -> str:
    return ALLOCATION_CASES[opportunity % len(ALLOCATION_CASES)]


def planted_allocations(opportunity: int) -> list[tuple[int, str, float]]:
    """(GAU index, "amount" or "percent", value) of one opportunity's allocations, before its amount is known:
    an "amount" value is a share of the gift (the record's amount is that share of it, in whole cents)."""
    case, turn = allocation_case(opportunity), opportunity // len(ALLOCATION_CASES)
    if case == "full":
        return [(1 + turn % 3, "amount", 1.0)]
    if case == "split_percent":  # 50/50 of an odd amount leaves a cent for the remainder rule
        return (
            [(1, "percent", 60.0), (2, "percent", 40.0)]
            if turn % 2
            else [(2, "percent", 50.0), (3, "percent", 50.0)]
        )
    if case == "split_amount":
        return [(2, "amount", 1 / 3), (3, "amount", 2 / 3)]
    if (
        case == "changed"
    ):  # first to the general fund, moved to a restricted fund weeks later (the served state)
        return [(3, "amount", 1.0)]
    return []


def _build_funds(world: WorldCore, opp_created: np.ndarray) -> None:
    rng = world.rng(43)
    sf = world.seed_tag("sf")
    gau_created = np.full(len(GAU_NAMES), world.start_ts - 300 * DAY, np.int64)
    world.add_table(
        Table(
            "salesforce", "npsp__General_Accounting_Unit__c", "Id", "SystemModstamp", "modified",
            gau_created, gau_created.copy(), np.full(len(GAU_NAMES), -1, np.int32),
            np.zeros(len(GAU_NAMES), np.int8),
            builder=lambda i: _gau(world, i),
            id_of=lambda i: salesforce_id("a0F", sf, i),
            index_of=salesforce_index,
        )
    )  # fmt: skip
    opps, gaus, kinds, values, created, modified = [], [], [], [], [], []
    for opportunity in range(opp_created.shape[0]):
        for gau, kind, value in planted_allocations(opportunity):
            opps.append(opportunity)
            gaus.append(gau)
            kinds.append(kind == "percent")
            values.append(value)
            at = int(opp_created[opportunity]) + 120
            created.append(at)
            changed = allocation_case(opportunity) == "changed"
            modified.append(min(at + 40 * DAY, world.end_ts - 1) if changed else at)
    # Templates NPSP copies onto new gifts: one by recurring donation, one by campaign (no gift of their own).
    for gau in (1, 2):
        opps.append(-1)
        gaus.append(gau)
        kinds.append(True)
        values.append(100.0)
        created.append(world.start_ts)
        modified.append(world.start_ts)
    count = len(opps)
    world.add_table(
        Table(
            "salesforce", "npsp__Allocation__c", "Id", "SystemModstamp", "modified",
            np.array(created, np.int64), np.array(modified, np.int64), np.full(count, -1, np.int32),
            world.draw_malformed(rng, count, ()),
            builder=lambda i: _allocation(world, i),
            id_of=lambda i: salesforce_id("a0E", sf, i),
            index_of=salesforce_index,
            columns={"opportunity": np.array(opps, np.int64), "gau": np.array(gaus, np.int64),
                     "is_percent": np.array(kinds, bool), "value": np.array(values, np.float64)},
        )
    )  # fmt: skip


def _gau(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("salesforce", "npsp__General_Accounting_Unit__c")]
    record_id = salesforce_id("a0F", world.seed_tag("sf"), i)
    return {
        "attributes": _attributes(world, "npsp__General_Accounting_Unit__c", record_id),
        "Id": record_id,
        "Name": GAU_NAMES[i],
        "npsp__Active__c": True,
        "npsp__Description__c": None,
        "IsDeleted": False,
        "CreatedDate": salesforce_datetime(int(table.created[i])),
        "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
        "SystemModstamp": salesforce_datetime(int(table.modified[i])),
    }


def allocation_amount_cents(world: WorldCore, i: int) -> int | None:
    """The amount the CRM stores on allocation ``i``: NPSP computes it for a percent allocation too."""
    table = world.tables[("salesforce", "npsp__Allocation__c")]
    opportunity = int(table.columns["opportunity"][i])
    if opportunity < 0:
        return None
    donation = int(world.tables[("salesforce", "Opportunity")].columns["donation"][opportunity])
    gift = crm_amount(world, donation)
    value = float(table.columns["value"][i])
    if table.columns["is_percent"][i]:
        return round(gift * value / 100)  # Python's round is half-even, as Apex's setScale(2)
    shares = [v for _, kind, v in planted_allocations(opportunity) if kind == "amount"]
    if len(shares) > 1 and value == max(shares):
        return gift - sum(int(gift * v) for v in shares if v != value)  # the last amount takes the rest
    return int(gift * value)


def _allocation(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("salesforce", "npsp__Allocation__c")]
    record_id = salesforce_id("a0E", world.seed_tag("sf"), i)
    opportunity = int(table.columns["opportunity"][i])
    is_percent = bool(table.columns["is_percent"][i])
    amount = allocation_amount_cents(world, i)
    currency = None
    if opportunity >= 0:
        donation = int(world.tables[("salesforce", "Opportunity")].columns["donation"][opportunity])
        currency = CURRENCIES[int(world.donation_currency[donation])].upper()
    template_by_campaign = opportunity < 0 and int(table.columns["gau"][i]) == 2
    return {
        "attributes": _attributes(world, "npsp__Allocation__c", record_id),
        "Id": record_id,
        "Name": f"GAU-{i + 1:06d}",
        "npsp__General_Accounting_Unit__c": salesforce_id(
            "a0F", world.seed_tag("sf"), int(table.columns["gau"][i])
        ),
        "npsp__Opportunity__c": salesforce_id("006", world.seed_tag("sf"), opportunity)
        if opportunity >= 0
        else None,
        "npsp__Recurring_Donation__c": RECURRING_DONATION_ID
        if opportunity < 0 and not template_by_campaign
        else None,
        "npsp__Campaign__c": COMPLETION_CAMPAIGN_ID if template_by_campaign else None,
        "npsp__Payment__c": None,
        "npsp__Amount__c": None if amount is None else amount / 100,
        "npsp__Percent__c": float(table.columns["value"][i]) if is_percent else None,
        "CurrencyIsoCode": currency or "USD",
        "IsDeleted": False,
        "CreatedDate": salesforce_datetime(int(table.created[i])),
        "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
        "SystemModstamp": salesforce_datetime(int(table.modified[i])),
    }


# ---------------------------------------------------------------- the API
SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
SOQL_CONDITION = re.compile(r"^\s*(\w+)\s*(>=|<=|>|<|=)\s*(\S+)\s*$")
SOQL_TIME_FIELDS = {
    "systemmodstamp": "modified",
    "lastmodifieddate": "modified",
    "createddate": "created",
}


class SalesforceApi:
    """The query API of one running sandbox, with its query locators and the write API's records."""

    def __init__(self, apis: VendorApis) -> None:
        self.apis = apis
        self.writes = SalesforceWrites(existing_contacts=lambda: generated_contacts(apis.world))
        credential = apis.world.credentials.salesforce
        self.org = SandboxOrg(static_token=credential, client_secret=credential)
        self.bulk = BulkIngest(self.writes)
        self._soql_locators: OrderedDict[str, tuple[str, np.ndarray, list[str]]] = OrderedDict()

    def delete_record(self, sobject: str, record_id: str, master_id: str | None = None) -> None:
        """A record deleted in the CRM (a Contact merged into ``master_id`` when given): it leaves /query, and
        /queryAll serves it, with IsDeleted (and a Contact's MasterRecordId), modified now."""
        table = self.apis.world.table("salesforce", sobject)
        index = table.index_of(record_id)
        if index is None:
            raise KeyError(record_id)
        # Deleting moves SystemModstamp to now, as Salesforce does (in a world with a horizon: just before it).
        world = self.apis.world
        at = int(time.time()) if world.horizon() is None else world.edit_time()
        with self.apis.lock:
            table.touch([index], at)
        self.org.delete_record(sobject, record_id, master_id, at)

    def __call__(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/services/oauth2/token" and request.method == "POST":
            host = request.headers.get("host", "127.0.0.1")
            return self.org.token(request, f"http://{host}/salesforce")
        described = re.match(r"^/services/data/(v\d+\.\d)/sobjects/(\w+)/describe/?$", request.path)
        if described and request.method == "GET":
            return self._describe(request, *described.groups())
        if BulkIngest.handles(request):
            if not self.org.accepts(request.headers.get("authorization", "")):
                return salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            return self.bulk.handle(request)
        if SalesforceWrites.handles(request):
            return self.writes.handle(request, self.apis)
        match = re.match(r"^/services/data/(v\d+\.\d)/(queryAll|query|limits)(?:/([\w-]+))?/?$", request.path)
        if not match:
            return salesforce_error(404, "NOT_FOUND", "The requested resource does not exist")
        version, resource, locator = match.groups()
        stream = None
        soql = request.arg("q")
        if soql:
            parsed = SOQL.match(soql)
            stream = parsed.group("object") if parsed else None
        elif locator and locator.rsplit("-", 1)[0] in self._soql_locators:
            stream = self._soql_locators[locator.rsplit("-", 1)[0]][0]
        used = sum(self.apis.api_calls.values())
        limit_info = {"Sforce-Limit-Info": f"api-usage={used}/15000"}
        fault_response = self.apis.request_faults(
            "salesforce",
            stream,
            {
                "rate_limit": lambda f: salesforce_error(
                    429,
                    "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentPerOrgLongTxn Limit exceeded.",
                    {"Retry-After": str(f.retry_after), **limit_info},
                ),
                "server_error": lambda f: salesforce_error(
                    f.status,
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId "
                    "if you contact support: 1234567890-12345 (-1234567890)",
                ),
                "auth_failure": lambda f: salesforce_error(
                    401, "INVALID_SESSION_ID", "Session expired or invalid"
                ),
            },
        )
        if fault_response:
            return fault_response
        if not self.org.accepts(request.headers.get("authorization", "")):
            return salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if resource == "limits":
            return Response(
                200,
                {
                    "DailyApiRequests": {"Max": 15000, "Remaining": max(0, 15000 - used)},
                    "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                    "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                },
                limit_info,
            )
        batch = 2000
        options = request.headers.get("sforce-query-options", "")
        batch_match = re.search(r"batchSize=(\d+)", options)
        if batch_match:
            batch = max(200, min(2000, int(batch_match.group(1))))
        if locator:
            return self._next_page(version, locator, batch, limit_info)
        if not soql:
            return salesforce_error(400, "MALFORMED_QUERY", "A query string has to be specified")
        return self._query(version, soql, batch, limit_info, include_deleted=resource == "queryAll")

    def _describe(self, request: Request, version: str, sobject: str) -> Response:
        if not self.org.accepts(request.headers.get("authorization", "")):
            return salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if sobject in EXTRA_OBJECTS:
            fields: list[str] = list(EXTRA_OBJECTS[sobject])
        else:
            try:
                table = self.apis.world.table("salesforce", sobject)
            except KeyError:
                table = None
            if table is None:
                return salesforce_error(404, "NOT_FOUND", "The requested resource does not exist")
            else:
                fields = list(table.record(0)) if len(table) else []
                fields.remove("attributes")
        if not self.org.has_object(sobject):
            return salesforce_error(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(200, self.org.describe(sobject, fields, version))

    def _query(
        self, version: str, soql: str, batch: int, headers: dict[str, str], *, include_deleted: bool = False
    ) -> Response:
        parsed = SOQL.match(soql)
        if not parsed:
            return salesforce_error(400, "MALFORMED_QUERY", f"unexpected token in query: {soql[:60]}")
        sobject = parsed.group("object")
        singles = {
            "Organization": self.org.organization,
            "npsp__Allocations_Settings__c": self.org.allocation_settings,
        }
        if (
            sobject in singles
            and (sobject == "Organization" or self.org.has_object(sobject))
            and not parsed.group("where")
        ):
            wanted = [f.strip() for f in parsed.group("fields").split(",")]
            record = singles[sobject]()
            # Organization's fields are as before (its kind of org decides them); the setting's can be hidden.
            hidden = {n for n in wanted if sobject != "Organization" and f"{sobject}.{n}" in self.org.missing}
            unknown = [name for name in wanted if name not in record or name in hidden]
            if unknown:
                return salesforce_error(
                    400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{sobject}'."
                )
            picked = {"attributes": record["attributes"], **{name: record[name] for name in wanted}}
            return Response(200, {"totalSize": 1, "done": True, "records": [picked]}, headers)
        try:
            if not self.org.has_object(sobject):
                raise KeyError(sobject)
            table = self.apis.world.table("salesforce", sobject)
        except KeyError:
            return salesforce_error(
                400,
                "INVALID_TYPE",
                f"\n{soql[:80]}\n^\nERROR at Row:1:Column:1\nsObject type '{sobject}' is not supported.",
            )
        since: int | None = None
        until: int | None = None
        column = "modified"
        if parsed.group("where"):
            for condition in re.split(r"\s+AND\s+", parsed.group("where"), flags=re.IGNORECASE):
                cond = SOQL_CONDITION.match(condition)
                if not cond or cond.group(1).lower() not in SOQL_TIME_FIELDS:
                    return salesforce_error(
                        400, "MALFORMED_QUERY", f"unsupported condition: {condition.strip()}"
                    )
                name, op, literal = cond.groups()
                column = SOQL_TIME_FIELDS[name.lower()]
                try:
                    value = parse_time(literal)
                except ValueError:
                    return salesforce_error(
                        400,
                        "MALFORMED_QUERY",
                        f"value of filter criterion for field '{name}' "
                        "must be of type dateTime and should not be enclosed in quotes",
                    )
                if op in (">=", ">"):
                    since = value + (1 if op == ">" else 0)
                elif op in ("<", "<="):
                    until = value + (1 if op == "<=" else 0)
                else:
                    since, until = value, value + 1
        fields_text = parsed.group("fields").strip()
        if re.fullmatch(r"COUNT\(\s*\)", fields_text, re.IGNORECASE):
            return Response(
                200, {"totalSize": table.count(since, until, column), "done": True, "records": []}, headers
            )
        fields = [f.strip() for f in fields_text.split(",")]
        known = set(self.org.visible_fields(sobject, table.record(0))) if len(table) else set()
        for name in fields:
            if known and name not in known:
                return salesforce_error(
                    400,
                    "INVALID_FIELD",
                    f"\nSELECT {fields_text[:40]}\n^\nERROR at Row:1:Column:8"
                    f"\nNo such column '{name}' on entity '{sobject}'. If you are attempting to "
                    "use a custom field, be sure to append the '__c' after the custom field name.",
                )
        listing = self.apis.listing("salesforce", sobject)
        with self.apis.lock:
            rows = table.window(since, until, column)
            if listing.excluded:
                rows = rows[~np.isin(rows, np.fromiter(listing.excluded, dtype=np.int64))]
            if not include_deleted and self.org.removed_ids(sobject):
                gone = [table.index_of(record_id) for record_id in self.org.removed_ids(sobject)]
                rows = rows[~np.isin(rows, np.array([i for i in gone if i is not None], dtype=np.int64))]
        if parsed.group("limit"):
            rows = rows[: int(parsed.group("limit"))]
        locator = uuid.uuid4().hex[:15]
        with self.apis.lock:  # query locators are shared by all request threads; keep the newest 64
            self._soql_locators[locator] = (sobject, rows, fields)
            while len(self._soql_locators) > 64:
                self._soql_locators.popitem(last=False)
        return self._page(version, locator, 0, batch, headers)

    def _next_page(self, version: str, locator: str, batch: int, headers: dict[str, str]) -> Response:
        query_id, _, offset = locator.rpartition("-")
        with self.apis.lock:
            known = query_id in self._soql_locators
        if not known or not offset.isdigit():
            return salesforce_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(version, query_id, int(offset), batch, headers)

    def _page(
        self, version: str, query_id: str, offset: int, batch: int, headers: dict[str, str]
    ) -> Response:
        with self.apis.lock:
            sobject, rows, fields = self._soql_locators[query_id]
        listing = self.apis.listing("salesforce", sobject)
        end = offset + batch
        if listing.faults.take("salesforce", sobject, ("drop_page",)) and offset > 0:
            offset, end = offset + batch, end + batch
        page_rows = rows[offset:end].tolist()
        for fault in listing.faults.take("salesforce", sobject, ("edit_during_sync",)):
            ahead = rows[end : end + 3 * max(fault.count, 1) : 3][: max(fault.count, 1)].tolist()
            with self.apis.lock:
                listing.table.touch(ahead, self.apis.world.edit_time() + fault.hits)
            fault.affected_ids.extend(listing.table.id_of(i) for i in ahead)
        records = []
        for record in listing.render(page_rows):
            record = self.org.shape(sobject, dict(record))
            picked = {"attributes": record["attributes"]}
            for name in fields:
                if name in record:
                    picked[name] = record[name]
            renamed = [
                f
                for f in listing.faults.list()
                if f.kind == "rename_field" and f.matches("salesforce", sobject)
            ]
            for fault in renamed:
                if fault.renamed_to in record:
                    picked[fault.renamed_to] = record[fault.renamed_to]
            records.append(picked)
        done = end >= rows.shape[0]
        body: dict[str, Any] = {"totalSize": int(rows.shape[0]), "done": done, "records": records}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{query_id}-{end}"
        return Response(200, body, headers)
