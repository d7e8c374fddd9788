"""The finance ledger in the sandbox: a monthly CSV export dropped in a folder (no API), and the truth
reconciliation between Stripe, Salesforce and the ledger must find.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import stripe
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import CURRENCIES, DAY, iso_date, stripe_id, to_epoch
from cdp_sandbox.tables import MALFORMED_REASONS, Table

CREDENTIAL = ""  # a folder, not an API: nothing to authenticate


@dataclass(frozen=True)
class LedgerTruth:
    """What reconciliation between Stripe, Salesforce and the ledger must find."""

    discrepancies: Mapping[str, tuple[str, ...]]  # kind -> financial transaction ids
    totals_by_month: Mapping[str, Mapping[str, int]]  # "2024-03" -> currency -> net minor units in ledger
    stripe_gross_by_month: Mapping[str, Mapping[str, int]]
    gift_month: Mapping[
        str, str
    ]  # financial transaction id (of a discrepancy) -> "2024-03", the month it was made

    def discrepancies_in(self, month: str) -> dict[str, set[str]]:
        """The discrepancies among the gifts made in ``month`` ("2024-03"), by kind."""
        return {
            kind: {ftid for ftid in ids if self.gift_month[ftid] == month}
            for kind, ids in self.discrepancies.items()
        }


def settings(world: WorldCore, base_url: str, ledger_folder: Path | str | None = None) -> SourceSettings:
    """The drop folder as a file URL (the connector reads files, not HTTP)."""
    folder = Path(ledger_folder) if ledger_folder else None
    return SourceSettings(
        folder.resolve().as_uri() if folder else "", "", {"folder": str(folder) if folder else ""}
    )


def write_drops(world: WorldCore, folder: str | Path) -> None:
    """Every month's export, as the sandbox keeps them in its drop folder."""
    for month in months(world):
        write_drop(world, folder, month)


def build(world: WorldCore) -> None:
    """The postings: each gift as contribution plus fee, each refund as a reversal (from Stripe's gifts)."""
    rng = world.rng(7)
    posted = ~world.missing_in_ledger
    donations = np.nonzero(posted)[0]
    # A refund that failed (cdp_sandbox.stripe) gave the donor nothing back: finance never books it.
    refunds = np.nonzero(posted[world.refund_donation] & ~world.refund_failed)[0]
    # Each gift posts as gross contribution plus processing fee; each refund as a reversal.
    kinds = np.concatenate(
        [
            np.zeros(donations.shape[0], np.int8),
            np.ones(donations.shape[0], np.int8),
            np.full(refunds.shape[0], 2, np.int8),
        ]
    )
    refs = np.concatenate([donations, donations, refunds])
    at = np.concatenate(
        [world.donation_created[donations], world.donation_created[donations], world.refund_created[refunds]]
    )
    posting_day = (at // DAY) * DAY
    order = np.lexsort((kinds, refs, posting_day))
    kinds, refs, posting_day = kinds[order], refs[order], posting_day[order]
    donation_of_row = refs.copy()
    if world.refund_donation.shape[0]:
        donation_of_row[kinds == 2] = world.refund_donation[refs[kinds == 2]]
    persons = world.donation_donor[donation_of_row]
    world.add_table(
        Table(
            "ledger",
            "postings",
            "reference",
            "posting_date",
            "created",
            posting_day.astype(np.int64),
            posting_day.astype(np.int64),
            persons.astype(np.int32),
            world.draw_malformed(
                rng,
                kinds.shape[0],
                ("missing_required", "negative_amount", "non_numeric_amount", "unknown_currency"),
            ),
            builder=lambda i: _row(world, i),
            id_of=lambda i: _reference(world, i),
            index_of=lambda rid: _index(world, rid),
            columns={"kind": kinds, "ref": refs},
        )
    )


def _reference(world: WorldCore, i: int) -> str:
    table = world.tables[("ledger", "postings")]
    kind, ref = int(table.columns["kind"][i]), int(table.columns["ref"][i])
    if kind == 0:
        return stripe_id("ch", world.seed_tag("ch"), ref)
    if kind == 1:
        return stripe_id("txn", world.seed_tag("txn"), ref)
    return stripe_id("re", world.seed_tag("re"), ref)


def _index(world: WorldCore, reference: str) -> int | None:
    lookup = world.__dict__.get("_ledger_lookup")
    if lookup is None:
        table = world.tables[("ledger", "postings")]
        lookup = world.__dict__["_ledger_lookup"] = {_reference(world, i): i for i in range(len(table))}
    return lookup.get(reference)


def _row(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("ledger", "postings")]
    kind, ref = int(table.columns["kind"][i]), int(table.columns["ref"][i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    donation = int(world.refund_donation[ref]) if kind == 2 else ref
    gross = int(world.donation_amount[donation])
    if kind == 0 and world.ledger_amount_typo[donation]:
        gross *= 10  # a keying error: 40.00 posted as 400.00
    minor = {0: gross, 1: -int(world.donation_fee[donation]), 2: -gross}[kind]
    amount = f"{minor / 100:.2f}"
    currency = CURRENCIES[int(world.donation_currency[donation])].upper()
    transaction_id = stripe.financial_transaction_id(world, donation)
    if reason == "negative_amount":
        amount = f"{-abs(minor) / 100:.2f}" if kind == 0 else f"{abs(minor) / 100:.2f}"
    elif reason == "non_numeric_amount":
        amount = "n/a"
    elif reason == "unknown_currency":
        currency = "XYZ"
    elif reason == "missing_required":
        transaction_id = ""
    return {
        "transaction_id": transaction_id,
        "posting_date": iso_date(int(table.created[i])),
        "account": ("4000 Contributions", "6100 Payment processing fees", "4000 Contributions")[kind],
        "amount": amount,
        "currency": currency,
        "reference": _reference(world, i),
    }


COLUMNS = ("transaction_id", "posting_date", "account", "amount", "currency", "reference")


def write_drop(world: WorldCore, folder: str | Path, month: str) -> Path:
    """Write the finance export for one month ("2024-03") as the ledger system drops it: one CSV."""
    year, mon = (int(part) for part in month.split("-"))
    since = to_epoch(date(year, mon, 1))
    until = to_epoch(date(year + (mon == 12), mon % 12 + 1, 1))
    until = min(until, world.present_ts)  # the export is taken at a day's close: nothing from the future
    path = Path(folder) / f"ledger_{year:04d}-{mon:02d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for record in world.records("ledger", "postings", since, until):
            writer.writerow(record)
    return path


def months(world: WorldCore) -> list[str]:
    first = datetime.fromtimestamp(world.start_ts, UTC)
    last = datetime.fromtimestamp(world.present_ts - 1, UTC)
    months, year, mon = [], first.year, first.month
    while (year, mon) <= (last.year, last.month):
        months.append(f"{year:04d}-{mon:02d}")
        year, mon = year + (mon == 12), mon % 12 + 1
    return months


def ledger_truth(world: WorldCore) -> LedgerTruth:
    """What reconciliation must find among the gifts made so far (a world with a future: before its horizon)."""
    horizon = world.horizon()
    made = (
        np.ones(world.donation_created.shape[0], bool)
        if horizon is None
        else world.donation_created < horizon
    )
    gift_month: dict[str, str] = {}

    def lost(which: np.ndarray) -> tuple[str, ...]:
        found = []
        for donation in np.nonzero(which & made)[0].tolist():
            ftid = stripe.financial_transaction_id(world, donation)
            gift_month[ftid] = iso_date(int(world.donation_created[donation]))[:7]
            found.append(ftid)
        return tuple(found)

    ids = {
        "missing_in_crm": lost(world.missing_in_crm),
        "missing_in_ledger": lost(world.missing_in_ledger),
        "ledger_amount_mismatch": lost(world.ledger_amount_typo),
    }
    if world.dispute_donation.shape[
        0
    ]:  # World(stripe_disputes=n): Stripe took (or took and gave back) the money
        disputed = np.zeros(world.donation_created.shape[0], bool)
        disputed[world.dispute_donation] = True
        ids["disputed"] = lost(disputed)
    month_of = np.array([iso_date(int(t))[:7] for t in world.donation_created[made]])
    stripe_gross: dict[str, dict[str, int]] = {}
    for month, currency, amount in zip(
        month_of.tolist(),
        world.donation_currency[made].tolist(),
        world.donation_amount[made].tolist(),
        strict=True,
    ):
        bucket = stripe_gross.setdefault(month, {})
        bucket[CURRENCIES[currency]] = bucket.get(CURRENCIES[currency], 0) + amount
    ledger_net: dict[str, dict[str, int]] = {}
    for record in world.records("ledger", "postings"):
        try:
            minor = round(float(record["amount"]) * 100)
        except ValueError:
            continue
        bucket = ledger_net.setdefault(record["posting_date"][:7], {})
        currency = record["currency"].lower()
        bucket[currency] = bucket.get(currency, 0) + minor
    return LedgerTruth(ids, ledger_net, stripe_gross, gift_month)
