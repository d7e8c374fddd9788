"""The package's one reader of the spreadsheets people hand over: CSV (UTF-8, with or without a byte order
mark) or Excel (the first sheet of an .xlsx/.xlsm workbook, values as last computed)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


def is_workbook(path: Path) -> bool:
    return path.suffix.lower() in WORKBOOK_SUFFIXES


def _workbook_rows(path: Path) -> list[tuple[Any, ...]]:
    from openpyxl import load_workbook  # only the spreadsheet imports pay for it

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        return list(book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()


def _csv_text(path: Path) -> io.StringIO:
    return io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")


def read_lines(path: str | Path) -> list[list[Any]]:
    """Every line, header included, as a list of cells as read: text from a CSV; from a workbook, cells
    keep their types (a date stays a date) and an empty cell is None."""
    path = Path(path)
    if is_workbook(path):
        return [list(row) for row in _workbook_rows(path)]
    return list(csv.reader(_csv_text(path)))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The data rows as {header: cell}, rows with nothing in them left out (cells as in `read_lines`)."""
    path = Path(path)
    if is_workbook(path):
        rows = _workbook_rows(path)
        if not rows:
            return []
        header = [str(cell).strip() if cell is not None else "" for cell in rows[0]]
        return [
            dict(zip(header, row, strict=False)) for row in rows[1:] if any(c not in (None, "") for c in row)
        ]
    return [
        row for row in csv.DictReader(_csv_text(path)) if any((value or "").strip() for value in row.values())
    ]
