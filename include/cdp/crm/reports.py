"""The CRM push's report files: the plan of a run with its values, for the operator only (CSV, mode 600).

They hold personal data, so an erasure rewrites every report that names an erased person.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from cdp.crm.plan import EXTERNAL_ID, FieldChange, LinkPlan


def report_path(report_dir: Path, run_id: str) -> Path:
    return report_dir / f"crm_push_{run_id.replace(':', '_').replace('+', '_')}.csv"


def write_report(path: Path, changes: list[FieldChange], links: LinkPlan | None = None) -> None:
    """The run's plan with values: the link steps first (crm_value: the Contact's Id), then every field."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "field", "change", "crm_value", "new_value"])
        for person, crm_id in sorted((links.links if links else {}).items()):
            writer.writerow([person, EXTERNAL_ID, "link", crm_id, person])
        for person, (reason, crm_ids) in sorted((links.reviews if links else {}).items()):
            writer.writerow([person, "_contact", "review", " ".join(crm_ids), reason])
        for change in changes:
            writer.writerow(
                [change.person_id, change.field, change.change, change.crm_value, change.new_value]
            )
    path.chmod(0o600)  # the values are personal data: the report is for the operator only


def erase_from_reports(paths: Iterable[str], person_ids: Collection[str]) -> dict[str, Any]:
    """Drop the rows of erased people from the push reports written earlier (their values are personal
    data): each report holding one is rewritten in place, the rest are left untouched. A report that is
    not on this machine's disk is named, for the operator to handle where it is."""
    rewritten, missing = 0, []
    for name in sorted(set(paths)):
        path = Path(name)
        if not path.is_file():
            missing.append(name)
            continue
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        kept = [row for row in rows[1:] if not (row and row[0] in person_ids)]
        if len(kept) == len(rows) - 1:
            continue
        partial = path.with_name(f".{path.name}.erasing")
        with partial.open("w", newline="") as handle:
            csv.writer(handle).writerows([rows[0], *kept])
        partial.chmod(0o600)
        partial.replace(path)
        rewritten += 1
    return {"rewritten": rewritten, "not_on_this_machine": missing}
