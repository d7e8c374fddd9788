"""The finance ledger export's one stream: its postings, read from the CSV files finance drops."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, DEFAULT_POOL, StreamSpec

POOL = DEFAULT_POOL  # files finance drops in a folder: no API, no budget to keep


def ledger_sign(amount: str, account: str, reference: str) -> v.Check:
    """The ledger export signs its lines: contributions (4xxx accounts) are positive, except the reversal
    of a refunded gift (its reference is the processor's refund id, ``re_…``); fees and other expenses
    (5xxx-9xxx) are negative. A line with the wrong sign is a keying error, not a correction."""

    def check(record: Mapping[str, Any]) -> str | None:
        text, account_name = v.field(record, amount), str(v.field(record, account) or "")
        if not isinstance(text, str) or not v.DECIMAL_TEXT.match(text.strip()):
            return None
        value = float(text)
        is_reversal = str(v.field(record, reference) or "").startswith("re_")
        if account_name.startswith("4") and not is_reversal and value < 0:
            return f"wrong sign: negative amount in {amount} for a contribution"
        if account_name.startswith("4") and is_reversal and value > 0:
            return f"wrong sign: positive amount in {amount} for a refund reversal"
        if account_name[:1] and account_name[:1] in "56789" and value > 0:
            return f"wrong sign: positive amount in {amount} for an expense account"
        return None

    return check


SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "ledger", "postings", "core.ledger_posting", ACTIVITY,
        v.all_of(
            v.required("transaction_id", "posting_date", "account", "amount", "currency", "reference"),
            v.decimal_text_amount("amount"),
            ledger_sign("amount", "account", "reference"),
            v.currency("currency"),
            v.iso_date("posting_date", optional=False),
        ),
        ("postings.sql",),
        lookback=timedelta(days=62),  # a month's drop arrives after the month; corrections re-drop the last
    ),
)  # fmt: skip
