"""The package's one email rule, phone normaliser and spreadsheet reader, on plain values and files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from cdp import sheets
from cdp.text_rules import e164_phone, is_e164, is_email, normalise_email


@pytest.mark.parametrize("value", ["ana@example.org", "a.b+tag@mail.example.co.uk", "ANA@EXAMPLE.ORG"])
def test_an_address_is_an_email(value: str) -> None:
    assert is_email(value)


@pytest.mark.parametrize(
    "value",
    ["ana at example.org", "ana@@example.org", "ana@", "ana@example", "ana,b@example.org", "a;b@example.org",
     "ana @example.org", " ana@example.org", ""],
)  # fmt: skip
def test_what_forms_let_through_is_not_an_email(value: str) -> None:
    assert not is_email(value)


def test_an_email_is_normalised_by_trimming_and_lower_casing_only() -> None:
    assert normalise_email("  Ana.B+News@Example.ORG ") == "ana.b+news@example.org"


def test_with_a_region_a_national_number_gets_its_country_code() -> None:
    assert e164_phone("020 7946 0958", "GB") == "+442079460958"
    assert e164_phone("(415) 555-2671", "US") == "+14155552671"
    assert e164_phone("12", "GB") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("+44 01234 5678", "+44012345678"), ("(+1) 555-0100 22", "+1555010022"), ("+4401234567", "+4401234567"),
     ("01234 5678", None), ("+44 12", None), ("+44 1234 CALL ME", None), ("+1234567890123456", None)],
)  # fmt: skip
def test_without_a_region_only_a_number_written_with_its_country_code_is_taken(value, expected) -> None:
    assert e164_phone(value, None) == expected


def test_e164_is_a_plus_and_7_to_15_digits() -> None:
    assert is_e164("+447700900001")
    assert not is_e164("+44 7700 900001") and not is_e164("447700900001") and not is_e164("+123456")


def test_a_csv_is_read_with_or_without_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes("\ufeffname,email\nAna,ana@example.org\n,\nBo,\n".encode())
    assert sheets.read_lines(path) == [["name", "email"], ["Ana", "ana@example.org"], ["", ""], ["Bo", ""]]
    assert sheets.read_records(path) == [
        {"name": "Ana", "email": "ana@example.org"},
        {"name": "Bo", "email": ""},
    ]


def test_a_workbook_keeps_its_cell_types_and_skips_empty_rows(tmp_path: Path) -> None:
    path = tmp_path / "people.XLSX"
    book = Workbook()
    sheet = book.active
    sheet.append([" name ", "joined"])
    sheet.append(["Ana", datetime(2024, 1, 2)])
    sheet.append([None, None])
    book.save(path)
    assert sheets.is_workbook(path)
    assert sheets.read_lines(path) == [[" name ", "joined"], ["Ana", datetime(2024, 1, 2)], [None, None]]
    assert sheets.read_records(path) == [{"name": "Ana", "joined": datetime(2024, 1, 2)}]
