"""What a reconciliation run found (totals per class, per currency), and how amounts are written.

Shared by the reconciliation and its report, below both, so neither imports the other to get them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ClassTotal:
    class_: str
    currency: str
    rows: int
    warehouse_minor: int
    stripe_minor: int
    ledger_minor: int
    difference_minor: int
    unexplained: int
    #: The gifts' closed-won Salesforce Opportunity amounts (the CRM side).
    crm_minor: int = 0


@dataclass
class Reconciliation:
    run_id: int
    month: date
    status: str
    gifts: int
    unexplained: int
    seconds: float
    totals: list[ClassTotal] = field(default_factory=list)
    report_html: Path | None = None
    report_csv: Path | None = None

    def total(self, class_: str, currency: str | None = None) -> tuple[int, int]:
        """Rows and summed difference of one class (one currency, or all)."""
        picked = [t for t in self.totals if t.class_ == class_ and currency in (None, t.currency)]
        return sum(t.rows for t in picked), sum(t.difference_minor for t in picked)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "month": self.month.isoformat(),
            "status": self.status,
            "gifts": self.gifts,
            "unexplained": self.unexplained,
            "seconds": self.seconds,
            "report_html": str(self.report_html) if self.report_html else None,
            "report_csv": str(self.report_csv) if self.report_csv else None,
            "totals": [t.__dict__ for t in self.totals],
        }


def format_minor(minor: int, currency: str) -> str:
    """Minor units as a decimal amount with its currency, exactly (no floats)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(int(minor)), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}"
