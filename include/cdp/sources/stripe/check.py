"""``cdp sources check`` for Stripe: is the key valid, may it read what the sync reads, and does the
organisation's metadata convention (only when the connection names one) hold on recent charges."""

from __future__ import annotations

from cdp.sources.base import AuthError, SourceError, SourceSettings, TransientError
from cdp.sources.check import UNCHECKED, Finding
from cdp.sources.stripe import METADATA_KEY_OPTION, SOURCE, PermissionDenied, StripeClient

# What the sync reads, with the restricted-key permission (Dashboard → Developers → API keys) that allows it.
READS = (
    ("charges", "Charges: Read"),
    ("refunds", "Charges: Read (refunds are part of the charges permission)"),
    ("balance_transactions", "Balance: Read"),
    ("disputes", "Disputes: Read"),
    ("events", "Events: Read"),
)
KEY_STEP = "SETUP.md, 'API key': a secret key, or a restricted key with read access to each resource listed"
METADATA_STEP = (
    "SETUP.md, 'Optional: a metadata key for the gift id': the donation form writes it on every charge, "
    "or remove the option to key gifts by Stripe's charge id"
)
#: How many of the latest charges the metadata check looks at.
SAMPLE = 100


def setup_findings(settings: SourceSettings) -> list[Finding]:
    client = StripeClient(settings)
    findings: list[Finding] = []
    if settings.credential.startswith(("sk_test_", "rk_test_")):
        findings.append(Finding(SOURCE, "credential", "a test-mode key: it reads test data, not real gifts",
                                KEY_STEP, "warning"))  # fmt: skip
    for resource, permission in READS:
        try:
            client.http.get_json(f"/v1/{resource}", params={"limit": 1})
        except PermissionDenied as error:
            findings.append(Finding(SOURCE, f"permission {permission}", str(error), KEY_STEP))
        except AuthError as error:  # 401: no point asking about the rest
            return [*findings, Finding(SOURCE, "credential", str(error), KEY_STEP)]
        except TransientError as error:  # a 5xx or a rate limit says nothing about the setup
            findings.append(
                Finding(SOURCE, f"endpoint /v1/{resource}", f"{UNCHECKED}: {error}", KEY_STEP, "warning")
            )
        except SourceError as error:
            findings.append(Finding(SOURCE, f"endpoint /v1/{resource}", str(error), KEY_STEP))
    metadata_key = settings.extra.get(METADATA_KEY_OPTION)
    if metadata_key and not any(f.item.startswith("permission Charges") for f in findings):
        findings.extend(_metadata_findings(client, str(metadata_key)))
    return findings


def _metadata_findings(client: StripeClient, key: str) -> list[Finding]:
    body = client.http.get_json("/v1/charges", params={"limit": SAMPLE})
    charges = [c for c in body.get("data", []) if c.get("status") == "succeeded"]
    without = [c for c in charges if not str((c.get("metadata") or {}).get(key) or "").strip()]
    if not charges or not without:
        return []
    problem = (f"{len(without)} of the latest {len(charges)} succeeded charges have no metadata.{key} "
               f"(e.g. {without[0].get('id')}); the sync quarantines them")  # fmt: skip
    severity = "missing" if len(without) == len(charges) else "warning"
    return [Finding(SOURCE, f"metadata key {key}", problem, METADATA_STEP, severity)]
