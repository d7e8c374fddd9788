"""The legacy data audit report: one self-contained HTML page (inline SVG charts, no scripts, no CDN).

Shows the accuracy rate before and after the cleanup against the 98% target, completeness per field,
rule breaches per export, duplicates, orphans and conflicting ids. Only counts: no personal data.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cdp.migration.legacy_profile import summary_json

BAR_WIDTH = 360


def _bars(items: Sequence[tuple[str, float, str]], *, scale: float = 1.0, percent: bool = True) -> str:
    """A horizontal bar chart: (label, value, colour) per bar; values in [0, scale]."""
    height = 22 * len(items) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{BAR_WIDTH + 320}" height="{height}" role="img">'
    ]
    for k, (label, value, colour) in enumerate(items):
        y = 4 + 22 * k
        width = 0 if scale == 0 else max(0.0, min(1.0, value / scale)) * BAR_WIDTH
        text = f"{100 * value:.1f}%" if percent else f"{value:g}"
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="180" y="{y}" width="{width:.1f}" height="16" fill="{colour}"/>'
            f'<text x="{184 + width:.1f}" y="{y + 13}" font-size="11">{text}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(summaries: Mapping[str, Mapping[str, Any]], target: float = 0.98) -> str:
    before, after = summaries["before"], summaries.get("after")
    rates = [("before cleanup", before["accuracy_rate"] or 0.0, "#c0392b")]
    if after:
        rates.append(("after cleanup", after["accuracy_rate"] or 0.0, "#27ae60"))
    rates.append((f"target (above {100 * target:.0f}%)", target, "#7f8c8d"))
    sections = [
        "<h2>Data accuracy rate</h2>",
        "<p>Share of records without any error. Before: every row as received. After: exact duplicates set "
        "aside, safe fixes applied; what remains is waiting in <code>ops.legacy_review</code>.</p>",
        _bars(rates),
        "<table><tr><th></th><th>records</th><th>with errors</th><th>accuracy</th></tr>",
    ]
    for stage, summary in (("before", before), ("after", after)):
        if summary:
            sections.append(
                f"<tr><td>{stage}</td><td>{summary['records']}</td><td>{summary['records_with_errors']}</td>"
                f"<td>{100 * (summary['accuracy_rate'] or 0):.2f}%</td></tr>"
            )
    sections.append("</table>")
    sections.append(
        f"<p>Exact duplicates: {before['duplicates']} &middot; orphans (enrollments without a learner): "
        f"{before['orphans']} &middot; conflicting ids: "
        + (", ".join(f"{html.escape(k)} {v}" for k, v in sorted(before["conflicting_ids"].items())) or "none")
        + "</p>"
    )
    for export, detail in before["exports"].items():
        sections.append(
            f"<h2>{html.escape(export)} ({detail['rows']} rows, {detail['rows_with_errors']} with errors)</h2>"
        )
        sections.append("<h3>Completeness per field</h3>")
        sections.append(
            _bars([(name, c["share"] or 0.0, "#2980b9") for name, c in detail["completeness"].items()])
        )
        if detail["invalid"]:
            sections.append("<h3>Rows breaking each rule (before cleanup)</h3>")
            worst = max(detail["invalid"].values())
            sections.append(
                _bars([(rule, count, "#e67e22") for rule, count in sorted(detail["invalid"].items())],
                      scale=worst, percent=False)
            )  # fmt: skip
        if after and export in after["exports"] and after["exports"][export]["invalid"]:
            remaining = after["exports"][export]["invalid"]
            sections.append(
                "<p>Left for review after cleanup: "
                + ", ".join(f"{html.escape(r)} {n}" for r, n in sorted(remaining.items()))
                + "</p>"
            )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Legacy data audit</title>'
        f"<style>{style}</style></head><body><h1>Legacy data audit</h1>"
        f"<p>Files fingerprint <code>{html.escape(before['fingerprint'][:16])}</code>, profiled "
        f"{html.escape(str(before.get('profiled_at', '')))}.</p>" + "".join(sections) + "</body></html>\n"
    )


def write_report(
    folder: str | Path, summaries: Mapping[str, Mapping[str, Any]], target: float = 0.98
) -> tuple[Path, Path]:
    """``legacy_audit_<fingerprint>.html`` and ``.json`` in ``folder``; the same profile writes the same bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"legacy_audit_{summaries['before']['fingerprint'][:12]}"
    page, data = folder / f"{stem}.html", folder / f"{stem}.json"
    _write(page, render_html(summaries, target))
    _write(data, summary_json(summaries) + "\n")
    return page, data


def _write(path: Path, text: str) -> None:
    """Write (or rewrite) a report file itself, never through a symlink planted in its place."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
