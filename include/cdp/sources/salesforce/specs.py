"""Salesforce NPSP's streams: contacts and accounts (people and reference), gifts and soft credits."""

from __future__ import annotations

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, PEOPLE_AND_REFERENCE, RESOLVE_PEOPLE, StreamSpec, VendorPool

POOL = VendorPool("salesforce_api", 2, "Salesforce: daily API request limit shared with other integrations")

NPSP_ACCOUNT_TYPES = (None, "Household Account", "One-to-One Individual", "Bucket Individual")
NPSP_STAGES = ("Prospecting", "Qualification", "Cultivation", "Solicitation", "Pledged", "Proposal/Price Quote",
               "Negotiation/Review", "Awarded", "Posted", "Closed Won", "Closed Lost", "Withdrawn")  # fmt: skip


def currency_if_present(path: str) -> v.Check:
    """The currency check, for a field only multi-currency orgs have."""
    check = v.currency(path)
    return lambda record: check(record) if path in record else None


def allocation_share(record) -> str | None:
    """NPSP refuses an allocation with neither an amount nor a percent, and a negative percent
    (ALLO_Allocations_TDTM); a percent allocation's amount is NPSP's to compute, so the percent wins."""
    percent = record.get("npsp__Percent__c")
    if percent is not None:
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            return v.rejected("non-numeric percent in npsp__Percent__c", percent)
        if percent < 0:
            return "negative percent in npsp__Percent__c"
        return None
    if record.get("npsp__Amount__c") is None:
        return "allocation with neither npsp__Amount__c nor npsp__Percent__c"
    return v.decimal_amount("npsp__Amount__c")(record)


def allocation_target(record) -> str | None:
    """An allocation is of a gift, a recurring donation or a campaign; a payment allocation (npsp__Payment__c,
    Accounting Subledger only) names none of them and is not read."""
    targets = ("npsp__Opportunity__c", "npsp__Recurring_Donation__c", "npsp__Campaign__c")
    if not any(record.get(name) for name in targets):
        return "allocation names no opportunity, recurring donation or campaign (payment allocations are not read)"
    return None


ACCOUNT_LINKS = "account_links.sql"  # contacts to their household or organisation, whichever lands second

SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "salesforce", "Contact", "core.person", PEOPLE_AND_REFERENCE,
        v.all_of(
            v.required("Id", "LastName"),
            v.email("Email", optional=True),
            v.iso_date("Birthdate"),
            v.one_of("npe01__Preferred_Email__c", (None, "Personal", "Work", "Alternate")),
        ),
        ("contact.sql", RESOLVE_PEOPLE, "account_contacts.sql", ACCOUNT_LINKS, "contact_removals.sql"),
        person_source="salesforce.contact",
        # People sources resolve one after another in a fixed order (two at once could make two persons of
        # one human, and which goes first shapes who is joined to whom): the CRM's after the LMS's.
        after=("moodle.users",),
    ),
    StreamSpec(
        "salesforce", "Account", "core.household", PEOPLE_AND_REFERENCE,
        v.all_of(
            v.required("Id", "Name"),
            v.one_of("npe01__SYSTEM_AccountType__c", NPSP_ACCOUNT_TYPES),
        ),
        ("account.sql", ACCOUNT_LINKS, "account_gifts.sql"),
        after=("salesforce.Contact",),  # a household links the contacts that name it
    ),
    StreamSpec(
        "salesforce", "Opportunity", "core.donation", ACTIVITY,
        v.all_of(
            # CurrencyIsoCode exists only in multi-currency orgs (a single-currency org's amounts are in the
            # org's currency, passed to the SQL by the connector): checked when the record has it.
            v.required("Id", "Amount", "CloseDate", "StageName", "Financial_Transaction_Id__c"),
            v.decimal_amount("Amount"),
            currency_if_present("CurrencyIsoCode"),
            v.iso_date("CloseDate", optional=False, past=False),
            v.one_of("StageName", NPSP_STAGES),
        ),
        ("opportunity.sql",),
        # The org's currency, for records without CurrencyIsoCode: the connector sets it (sql_params); '' = none.
        params=(("org_currency", ""),),
        # An Opportunity is tied to its Stripe donation by the financial transaction id: one whose charge
        # lands a moment later would wait in the quarantine until the next run.
        after=("salesforce.Account", "stripe.charges"),
        # It lands on the processor's donation (crm_source_record_id), not as a donation of its own.
        landed_in=("ops.crm_gift_landed", "salesforce"),
    ),
    StreamSpec(
        "salesforce", "npsp__Partial_Soft_Credit__c", "core.donation_soft_credit", ACTIVITY,
        v.all_of(
            v.required("Id", "npsp__Opportunity__c", "npsp__Contact__c", "npsp__Amount__c"),
            v.decimal_amount("npsp__Amount__c"),
            currency_if_present("CurrencyIsoCode"),
        ),
        ("soft_credit.sql", "soft_credit_land.sql"),
        after=("salesforce.Contact", "salesforce.Opportunity"),  # a soft credit names its gift and contact
    ),
    StreamSpec(
        "salesforce", "npsp__General_Accounting_Unit__c", "core.fund", PEOPLE_AND_REFERENCE,
        v.all_of(v.required("Id", "Name"), v.boolean("npsp__Active__c")),
        ("fund.sql",),
    ),
    StreamSpec(
        "salesforce", "npsp__Allocation__c", "core.donation_allocation", ACTIVITY,
        v.all_of(
            # Only what NPSP's metadata makes required: the GAU (General_Accounting_Unit__c: required).
            v.required("Id", "npsp__General_Accounting_Unit__c"),
            allocation_share,
            allocation_target,
            currency_if_present("CurrencyIsoCode"),
        ),
        ("allocation.sql",),
        params=(("org_currency", ""),),
        after=("salesforce.npsp__General_Accounting_Unit__c", "salesforce.Opportunity"),
    ),
    # NPSP's usual soft credits: contact roles other than the donor's. Role is the org's own picklist (NPSP
    # suggests "Soft Credit", "Household Member", "Matched Donor", ...), so any role name is taken.
    StreamSpec(
        "salesforce", "OpportunityContactRole", "core.donation_soft_credit", ACTIVITY,
        v.all_of(
            v.required("Id", "OpportunityId", "ContactId"),
            v.boolean("IsPrimary"),
        ),
        ("contact_role_soft_credit.sql", "soft_credit_land.sql"),
        # after the partial soft credits, which win for the same gift and contact
        after=("salesforce.Contact", "salesforce.Opportunity", "salesforce.npsp__Partial_Soft_Credit__c"),
    ),
)  # fmt: skip
