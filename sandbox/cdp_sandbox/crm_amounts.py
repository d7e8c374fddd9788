"""Planted CRM amount errors: Salesforce Opportunities whose Amount differs from the gift the processor took.

A data-entry slip in the CRM (a digit typed twice, a cent off) is what the reconciliation's CRM side must
find. Off by default (``WorldCore.crm_amount_error_rate = 0``), so every other world and its truths are
unchanged; when on, the planted gifts come from their own random generator, seeded by the world's seed.
"""

from __future__ import annotations

import random

from cdp_sandbox import stripe
from cdp_sandbox.core import WorldCore

#: How a slip changes the amount (minor units): a cent off either way, a zero too many, a zero too few.
SLIPS = ("cent_over", "cent_under", "times_ten", "tenth")


def _slip(amount: int, slip: str) -> int:
    if slip == "cent_over":
        return amount + 1
    if slip == "cent_under":
        return max(amount - 1, 1)
    if slip == "times_ten":
        return amount * 10
    return max(amount // 10, 1)


def planted_amounts(world: WorldCore) -> dict[int, int]:
    """Donation index -> the Amount (minor units) the CRM shows instead of the real one."""
    cached = world.__dict__.get("_crm_amount_errors")
    if cached is not None:
        return cached
    planted: dict[int, int] = {}
    if world.crm_amount_error_rate > 0:
        rng = random.Random(f"{world.seed}:crm_amount_errors")
        table = world.table("salesforce", "Opportunity")
        for opportunity in range(len(table)):
            if table.malformed[opportunity] or rng.random() >= world.crm_amount_error_rate:
                continue
            donation = int(table.columns["donation"][opportunity])
            amount = int(world.donation_amount[donation])
            planted[donation] = _slip(amount, rng.choice(SLIPS))
    world.__dict__["_crm_amount_errors"] = planted
    return planted


def crm_amount(world: WorldCore, donation: int) -> int:
    """The Opportunity's Amount in minor units: the gift's own, unless a slip was planted on it."""
    return planted_amounts(world).get(donation, int(world.donation_amount[donation]))


def crm_amount_mismatches(world: WorldCore) -> dict[str, tuple[int, int]]:
    """The truth: financial transaction id -> (real amount, CRM amount), minor units, for every planted slip."""
    return {
        stripe.financial_transaction_id(world, donation): (int(world.donation_amount[donation]), amount)
        for donation, amount in planted_amounts(world).items()
    }
