"""Salesforce's setup check for ``cdp sources check``: what the org lacks, each with its SETUP.md step.

It authenticates as the sync does (the connected app's client credentials), then asks the org's describe
for every object and field we read (``OBJECT_FIELDS``) or write (the CRM push and the completion triggers),
as the integration user sees them: a field without field-level access is absent from the describe, just as
one never created. Object permissions come from the describe too (``queryable``, ``createable``,
``updateable``), and a field we write must be ``updateable`` (an external id also ``externalId``).
"""

from __future__ import annotations

from cdp.sources.base import AuthError, ContractError, SourceError, SourceSettings
from cdp.sources.check import Finding
from cdp.sources.salesforce import OBJECT_FIELDS, SOURCE, NotFound, SalesforceClient

SETUP = "salesforce/SETUP.md"
STEP_USER = f"{SETUP} §1 API user: permission set with API Enabled and read access"
STEP_APP = f"{SETUP} §2 connected app (client credentials flow, run as the API user)"
STEP_NPSP = f"{SETUP} §3 NPSP installed, and field-level read access for the API user"
STEP_FIELDS = f"{SETUP} §4 custom fields"
STEP_CURRENCY = f"{SETUP} §5 currency"
STEP_CAMPAIGN = f"{SETUP} §6 completion campaign"
STEP_ALLOCATIONS = f"{SETUP} §7 GAU allocations"
# NPSP's hierarchy custom setting for allocations (tests/vendor_material/salesforce/npsp/Allocations_Settings__c.*):
# the org-wide row is the one whose SetupOwnerId is the org (Id prefix 00D).
ALLOCATION_SETTINGS = "npsp__Allocations_Settings__c"
ALLOCATION_SETTING_FIELDS = ("SetupOwnerId", "npsp__Default_Allocations_Enabled__c", "npsp__Default__c")

# The organisation's own fields (not NPSP's): created by its admin, SETUP.md §4.
ORG_FIELDS = frozenset({"Financial_Transaction_Id__c", "Stripe_Charge_Id__c"})
# Read when the org has them, never needed: a missing one is not a finding (CurrencyIsoCode: see §5).
OPTIONAL_FIELDS = frozenset({"CurrencyIsoCode"})
# What the CRM push (cdp.crm) and the completion triggers (cdp.triggers) write: object -> (field, external id?).
WRITES: dict[str, tuple[tuple[str, bool], ...]] = {
    "Contact": (("CDP_Person_Id__c", True), ("FirstName", False), ("LastName", False), ("Email", False),
                ("Phone", False), ("HasOptedOutOfEmail", False), ("CDP_Course_Messages_Consent__c", False),
                ("CDP_Fundraising_Consent__c", False)),
    "CampaignMember": (("CDP_Trigger_Key__c", True), ("CampaignId", False), ("ContactId", False), ("Status", False)),
}  # fmt: skip


def setup_findings(settings: SourceSettings) -> list[Finding]:
    findings: list[Finding] = []
    if not settings.extra.get("client_id"):
        findings.append(
            Finding(
                SOURCE,
                "credential",
                "a pasted access token: it expires at the org's session timeout and cannot be renewed",
                f"{STEP_APP}; put its consumer key in the connection's extra as client_id",
                "warning",
            )  # fmt: skip
        )
    client = SalesforceClient(settings)
    try:
        client.limits()
    except AuthError as error:
        return [*findings, Finding(SOURCE, "credential", str(error), STEP_APP)]
    except SourceError as error:
        return [*findings, Finding(SOURCE, "REST API", str(error), STEP_USER)]

    described: dict[str, dict | None] = {}
    for sobject in dict.fromkeys([*OBJECT_FIELDS, *WRITES]):
        try:
            described[sobject] = client.describe(sobject)
        except NotFound:
            described[sobject] = None
            findings.append(
                Finding(SOURCE, f"object {sobject}", "does not exist or the API user cannot see it",
                        STEP_NPSP if sobject.startswith("npsp__") or sobject in OBJECT_FIELDS else STEP_USER)
            )  # fmt: skip

    for sobject, fields in OBJECT_FIELDS.items():
        describe = described[sobject]
        if describe is None:
            continue
        if not describe.get("queryable", True):
            findings.append(Finding(SOURCE, f"object {sobject}", "not queryable by the API user", STEP_USER))
        available = {str(field.get("name")) for field in describe["fields"]}
        for name in fields:
            if name in available or name in OPTIONAL_FIELDS:
                continue
            step = STEP_FIELDS if name in ORG_FIELDS else STEP_NPSP
            findings.append(
                Finding(SOURCE, f"field {sobject}.{name}", "missing, or no field-level read access", step)
            )

    for sobject, fields in WRITES.items():
        describe = described[sobject]
        if describe is None:
            continue
        if not (describe.get("createable", True) and describe.get("updateable", True)):
            findings.append(
                Finding(SOURCE, f"object {sobject}", "the API user may not create or edit it", STEP_USER)
            )
        by_name = {str(field.get("name")): field for field in describe["fields"]}
        for name, external_id in fields:
            field = by_name.get(name)
            if field is None:
                step = STEP_FIELDS if name.endswith("__c") else STEP_USER
                findings.append(
                    Finding(
                        SOURCE, f"field {sobject}.{name}", "missing, or not visible to the API user", step
                    )
                )
            elif not field.get("updateable", True):
                findings.append(
                    Finding(SOURCE, f"field {sobject}.{name}", "not editable by the API user", STEP_USER)
                )
            elif external_id and not field.get("externalId", False):
                findings.append(
                    Finding(SOURCE, f"field {sobject}.{name}", "not marked External ID", STEP_FIELDS)
                )

    opportunity = described.get("Opportunity")
    if opportunity is not None and "CurrencyIsoCode" not in {f.get("name") for f in opportunity["fields"]}:
        try:
            client.org_currency()
        except NotFound:
            findings.append(
                Finding(SOURCE, "org currency", "the Organization object is not visible", STEP_CURRENCY)
            )
        except ContractError as error:
            findings.append(
                Finding(SOURCE, "org currency", str(error).removeprefix("salesforce: "), STEP_CURRENCY)
            )

    findings.extend(allocation_findings(client))

    if not settings.extra.get("completion_campaign_id"):
        findings.append(
            Finding(
                SOURCE,
                "completion_campaign_id",
                "not set: course completers are not added to a donor campaign",
                STEP_CAMPAIGN,
                "warning",
            )  # fmt: skip
        )
    client.session.close()
    return findings


def allocation_findings(client: SalesforceClient) -> list[Finding]:
    """NPSP's Default Allocations: without them a gift nobody allocated has no fund (ops.unallocated_gift
    reports it, nothing guesses one); with them, the default GAU must exist and be active."""
    try:
        available = client.field_names(ALLOCATION_SETTINGS)
    except NotFound:
        return [Finding(SOURCE, f"object {ALLOCATION_SETTINGS}", "does not exist or the API user cannot see it",
                        STEP_NPSP, "warning")]  # fmt: skip
    if not set(ALLOCATION_SETTING_FIELDS) <= available:
        missing = ", ".join(sorted(set(ALLOCATION_SETTING_FIELDS) - available))
        return [Finding(SOURCE, f"object {ALLOCATION_SETTINGS}", f"no field-level read access to {missing}",
                        STEP_NPSP, "warning")]  # fmt: skip
    body = next(
        client.query_pages(f"SELECT {', '.join(ALLOCATION_SETTING_FIELDS)} FROM {ALLOCATION_SETTINGS}")
    )
    org_rows = [row for row in body["records"] if str(row.get("SetupOwnerId") or "").startswith("00D")]
    row = org_rows[0] if org_rows else {}
    if not row.get("npsp__Default_Allocations_Enabled__c"):
        return [
            Finding(SOURCE, "default GAU allocations",
                    "off: a gift with no allocation belongs to no fund and is reported in ops.unallocated_gift",
                    STEP_ALLOCATIONS, "warning")
        ]  # fmt: skip
    default = str(row.get("npsp__Default__c") or "")
    gau = "npsp__General_Accounting_Unit__c"
    found = (
        [
            record
            for body in client.query_pages(f"SELECT Id, npsp__Active__c FROM {gau}")
            for record in body["records"]
        ]
        if default
        else []
    )
    match = [record for record in found if str(record.get("Id", ""))[:15] == default[:15]]
    if not match or not match[0].get("npsp__Active__c", True):
        return [
            Finding(SOURCE, "default GAU", "Default Allocations are on but the default GAU is not an active GAU",
                    STEP_ALLOCATIONS)
        ]  # fmt: skip
    return []
