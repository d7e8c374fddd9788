"""Legacy exports for the migration audit, drawn from the generator's people, with the mess planted and known.

Before the platform, the nonprofit kept its data in an LMS that exports CSV, a CRM export, a donor
spreadsheet (XLSX) and a referral spreadsheet kept partly in Excel and partly as CSV. ``write_exports``
writes these files to a folder, deterministically from the world's seed (its own random generator, so no
other sandbox data changes), and returns a ``LegacyTruth`` naming every planted defect by file and row:

- safe to fix automatically: emails with stray spaces or capitals, phones not in E.164, dates written
  ``YYYY/MM/DD`` or ``DD.MM.YYYY``, exact duplicate rows;
- for people to decide: missing required fields, invalid emails, impossible dates, invalid amounts,
  enrollments whose learner is not in the LMS export (orphans), CRM contacts whose LMS id names a learner
  with another email (same email under different ids, or one id for a different person), and a CSV row
  that cannot be parsed (an unquoted comma splits a field).

    truth = write_exports(World(seed=7, learners=300), "exports/")
    truth.defects["donors"][("donors.xlsx", 17)]   # -> "invalid_amount"
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cdp.migration.legacy_formats import EXPORTS
from cdp_sandbox import people
from cdp_sandbox.generator import World

FIXABLE = frozenset({"email_not_normalised", "phone_not_e164", "date_not_iso", "exact_duplicate"})
UNFIXABLE = frozenset(
    {"missing_required", "invalid_email", "invalid_date", "invalid_amount", "orphan", "conflicting_id", "unparseable"}
)  # fmt: skip

FIXED_TIME = datetime(2025, 1, 1, tzinfo=UTC)  # file metadata times, so the same seed gives the same bytes


@dataclass
class LegacyTruth:
    """What a correct audit of the files must find."""

    files: dict[str, list[str]] = field(default_factory=dict)  # export -> file names
    rows: dict[str, int] = field(default_factory=dict)  # export -> data rows (every row, parsed or not)
    defects: dict[str, dict[tuple[str, int], str]] = field(
        default_factory=dict
    )  # export -> (file, row) -> kind
    blanks: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # export -> field -> empty values (parsed rows)
    conflict_kinds: dict[tuple[str, int], str] = field(
        default_factory=dict
    )  # crm row -> same_email | same_id

    def kind_counts(self, export: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind in self.defects.get(export, {}).values():
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def accuracy_before(self) -> float:
        errors = sum(len(d) for d in self.defects.values())
        return (self.total_rows - errors) / self.total_rows

    def accuracy_after(self) -> float:
        kinds = [kind for d in self.defects.values() for kind in d.values()]
        duplicates = kinds.count("exact_duplicate")
        unfixable = sum(1 for kind in kinds if kind in UNFIXABLE)
        return (self.total_rows - duplicates - unfixable) / (self.total_rows - duplicates)


class _Sheet:
    """Rows of one export being planted: values per row plus the defect, if any, of each."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = tuple(header)
        self.rows: list[list[str]] = []
        self.kinds: list[str | None] = []
        self.raw_lines: dict[int, str] = {}  # row index -> a line written as is (the unparseable row)
        self.conflicts: dict[int, str] = {}  # row index -> kind of id conflict planted there

    def add(self, values: Sequence[str], kind: str | None = None) -> int:
        self.rows.append([str(v) for v in values])
        self.kinds.append(kind)
        return len(self.rows) - 1

    def column(self, name: str) -> int:
        return self.header.index(name)


def _e164(phone: str) -> str:
    return "+" + "".join(ch for ch in phone if ch.isdigit())


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _other_format(day: date, rng: random.Random) -> str:
    return day.strftime("%Y/%m/%d") if rng.random() < 0.5 else day.strftime("%d.%m.%Y")


def _messy_email(email: str, rng: random.Random) -> str:
    return rng.choice((f" {email}", f"{email} ", email.upper(), email[:1].upper() + email[1:] + " "))


def _impossible(day: date) -> str:
    return f"{day.year}-02-{30 + day.day % 2}" if day.month != 2 else f"{day.year}-13-{day.day:02d}"


def _plant(rng: random.Random, candidates: list[int], count: int, taken: set[int]) -> list[int]:
    free = [i for i in candidates if i not in taken]
    picked = rng.sample(free, min(count, len(free)))
    taken.update(picked)
    return picked


def build(world: World) -> dict[str, _Sheet]:
    """The five exports' rows, each planted defect recorded on its row."""
    rng = random.Random(f"{world.seed}:legacy")
    seen_emails: set[str] = set()
    learners: list[int] = []
    for person in range(world.learners):
        email = world.email(person)
        if email not in seen_emails:
            seen_emails.add(email)
            learners.append(person)
    donor_only = list(range(world.first_donor_only, world.first_partner_contact))
    donor_only = [p for p in donor_only if world.email(p) not in seen_emails]
    few = max(1, len(learners) // 150)  # unfixable defects of each kind per export: well under 2% in all

    # ------------------------------------------------------------------ LMS learners
    sheet_l = _Sheet(EXPORTS["lms_learners"][1])
    learner_id = {person: 1000 + k for k, person in enumerate(learners)}
    for person in learners:
        parts = world.name(person)
        born = world.birth_date(person) or ""
        sheet_l.add(
            [learner_id[person], parts.given, parts.family or "", world.email(person), _e164(world.phone(person)),
             born, _day(int(world.registered[person])).isoformat()]
        )  # fmt: skip
    taken: set[int] = set()
    rows = list(range(len(sheet_l.rows)))
    email_col, phone_col, dob_col, first_col = (
        sheet_l.column(c) for c in ("email", "phone", "date_of_birth", "first_name")
    )
    with_dob = [i for i in rows if sheet_l.rows[i][dob_col]]
    for i in _plant(rng, rows, few, taken):
        sheet_l.rows[i][first_col if rng.random() < 0.5 else email_col] = ""
        sheet_l.kinds[i] = "missing_required"
    for i in _plant(rng, rows, few, taken):
        sheet_l.rows[i][email_col] = people.break_email(sheet_l.rows[i][email_col], i)
        sheet_l.kinds[i] = "invalid_email"
    for i in _plant(rng, with_dob, few, taken):
        sheet_l.rows[i][dob_col] = _impossible(date.fromisoformat(sheet_l.rows[i][dob_col]))
        sheet_l.kinds[i] = "invalid_date"
    for i in _plant(rng, rows, max(2, len(rows) // 25), taken):
        sheet_l.rows[i][email_col] = _messy_email(sheet_l.rows[i][email_col], rng)
        sheet_l.kinds[i] = "email_not_normalised"
    for i in _plant(rng, rows, max(2, len(rows) // 25), taken):
        person = learners[i]
        sheet_l.rows[i][phone_col] = world.phone(person)
        sheet_l.kinds[i] = "phone_not_e164"
    for i in _plant(rng, with_dob, max(2, len(rows) // 30), taken):
        sheet_l.rows[i][dob_col] = _other_format(date.fromisoformat(sheet_l.rows[i][dob_col]), rng)
        sheet_l.kinds[i] = "date_not_iso"
    email_trusted = {
        learners[i] for i in rows if sheet_l.kinds[i] not in ("missing_required", "invalid_email")
    }
    # A name typed with the separator in it: the line splits into one field too many.
    extra = len(sheet_l.rows)
    sheet_l.add([""] * len(sheet_l.header), "unparseable")
    sheet_l.raw_lines[extra] = f"{1000 + extra},Ana,Lopez, Jr.,ana.lopez.jr@example.org,+15550100,,2024-01-05"

    # ------------------------------------------------------------------ LMS enrollments
    sheet_e = _Sheet(EXPORTS["lms_enrollments"][1])
    courses = [f"C{100 + k}" for k in range(12)]
    for k in range(3 * len(learners)):
        person = learners[rng.randrange(len(learners))]
        day = _day(int(world.registered[person])) + timedelta(days=rng.randrange(0, 500))
        sheet_e.add([50_000 + k, learner_id[person], rng.choice(courses), day.isoformat(),
                     rng.choice(("active", "active", "active", "completed", "withdrawn"))])  # fmt: skip
    taken = set()
    rows = list(range(len(sheet_e.rows)))
    lid_col, on_col, course_col = (
        sheet_e.column("learner_id"),
        sheet_e.column("enrolled_on"),
        sheet_e.column("course_code"),
    )
    for n, i in enumerate(_plant(rng, rows, few, taken)):
        sheet_e.rows[i][lid_col] = str(900_000 + n)  # a learner the LMS export does not have
        sheet_e.kinds[i] = "orphan"
    for i in _plant(rng, rows, few, taken):
        sheet_e.rows[i][course_col] = ""
        sheet_e.kinds[i] = "missing_required"
    for i in _plant(rng, rows, few, taken):
        sheet_e.rows[i][on_col] = _impossible(date.fromisoformat(sheet_e.rows[i][on_col]))
        sheet_e.kinds[i] = "invalid_date"
    for i in _plant(rng, rows, max(2, len(rows) // 30), taken):
        sheet_e.rows[i][on_col] = _other_format(date.fromisoformat(sheet_e.rows[i][on_col]), rng)
        sheet_e.kinds[i] = "date_not_iso"

    # ------------------------------------------------------------------ CRM contacts
    sheet_c = _Sheet(EXPORTS["crm_contacts"][1])
    linked = [p for p in learners if p in email_trusted and rng.random() < 0.6]
    crm_people = [(p, True) for p in linked] + [(p, False) for p in donor_only]
    rng.shuffle(crm_people)
    for k, (person, is_learner) in enumerate(crm_people):
        parts = world.name(person)
        sheet_c.add(
            [f"003{world.seed:03d}{k:07d}", learner_id[person] if is_learner else "", parts.given,
             parts.family or parts.given, world.email(person), _e164(world.phone(person)),
             _day(int(world.registered[person])).isoformat()]
        )  # fmt: skip
    taken = set()
    rows = list(range(len(sheet_c.rows)))
    c_lid, c_email, c_last, c_phone = (
        sheet_c.column(c) for c in ("lms_learner_id", "email", "last_name", "phone")
    )
    with_link = [i for i in rows if sheet_c.rows[i][c_lid]]
    without_link = [i for i in rows if not sheet_c.rows[i][c_lid]]
    trusted_ids = [learner_id[p] for p in learners if p in email_trusted]
    for i in _plant(rng, with_link, few, taken):  # same email, another learner's id
        own = int(sheet_c.rows[i][c_lid])
        sheet_c.rows[i][c_lid] = str(rng.choice([t for t in trusted_ids if t != own]))
        sheet_c.kinds[i] = "conflicting_id"
        sheet_c.conflicts[i] = "same_email_different_id"
    for i in _plant(rng, without_link, few, taken):  # one id, a different person
        sheet_c.rows[i][c_lid] = str(rng.choice(trusted_ids))
        sheet_c.kinds[i] = "conflicting_id"
        sheet_c.conflicts[i] = "same_id_different_person"
    for i in _plant(rng, rows, few, taken):
        sheet_c.rows[i][c_last] = ""
        sheet_c.kinds[i] = "missing_required"
    for i in _plant(rng, without_link, few, taken):
        sheet_c.rows[i][c_email] = people.break_email(sheet_c.rows[i][c_email], i)
        sheet_c.kinds[i] = "invalid_email"
    for i in _plant(rng, rows, max(2, len(rows) // 25), taken):
        sheet_c.rows[i][c_email] = _messy_email(sheet_c.rows[i][c_email], rng)
        sheet_c.kinds[i] = "email_not_normalised"
    for i in _plant(rng, rows, max(2, len(rows) // 25), taken):
        sheet_c.rows[i][c_phone] = sheet_c.rows[i][c_phone][:3] + " " + sheet_c.rows[i][c_phone][3:]
        sheet_c.kinds[i] = "phone_not_e164"

    # ------------------------------------------------------------------ donors (XLSX)
    sheet_d = _Sheet(EXPORTS["donors"][1])
    givers = [p for p in learners if rng.random() < 0.3] + donor_only
    for k in range(len(givers) + len(givers) // 2):
        person = givers[k % len(givers)]
        parts = world.name(person)
        day = _day(world.start_ts + rng.randrange(0, world.end_ts - world.start_ts))
        cents = rng.choice((1000, 2500, 5000, 10000)) + rng.choice((0, 0, 0, 50, 99))
        sheet_d.add([f"D-{k + 1:05d}", f"{parts.given} {parts.family or ''}".strip(), world.email(person),
                     day.isoformat(), f"{cents // 100}.{cents % 100:02d}",
                     rng.choice(("USD", "USD", "EUR", "GBP"))])  # fmt: skip
    taken = set()
    rows = list(range(len(sheet_d.rows)))
    d_amount, d_email, d_date = sheet_d.column("amount"), sheet_d.column("email"), sheet_d.column("gift_date")
    for n, i in enumerate(_plant(rng, rows, 2 * few, taken)):
        value = sheet_d.rows[i][d_amount]
        sheet_d.rows[i][d_amount] = (f"-{value}", value.replace(".", ",") + " €", "twenty")[n % 3]
        sheet_d.kinds[i] = "invalid_amount"
    for i in _plant(rng, rows, few, taken):
        sheet_d.rows[i][d_amount] = ""
        sheet_d.kinds[i] = "missing_required"
    for i in _plant(rng, rows, few, taken):
        sheet_d.rows[i][d_email] = people.break_email(sheet_d.rows[i][d_email], i)
        sheet_d.kinds[i] = "invalid_email"
    for i in _plant(rng, rows, max(2, len(rows) // 25), taken):
        sheet_d.rows[i][d_email] = _messy_email(sheet_d.rows[i][d_email], rng)
        sheet_d.kinds[i] = "email_not_normalised"
    for i in _plant(rng, rows, max(2, len(rows) // 30), taken):
        sheet_d.rows[i][d_date] = _other_format(date.fromisoformat(sheet_d.rows[i][d_date]), rng)
        sheet_d.kinds[i] = "date_not_iso"

    # ------------------------------------------------------------------ referrals (XLSX then CSV)
    sheet_r = _Sheet(EXPORTS["referrals"][1])
    for k in range(max(20, len(learners) // 2)):
        referrer, referred = rng.sample(learners, 2)
        day = _day(int(world.registered[referred]))
        sheet_r.add([f"R{k + 1:04d}", world.email(referrer), world.email(referred), day.isoformat(),
                     rng.choice(("", "voucher", "certificate"))])  # fmt: skip
    taken = set()
    rows = list(range(len(sheet_r.rows)))
    r_from, r_to, r_on = (
        sheet_r.column("referrer_email"),
        sheet_r.column("referred_email"),
        sheet_r.column("referred_on"),
    )
    for i in _plant(rng, rows, few, taken):
        sheet_r.rows[i][r_to] = ""
        sheet_r.kinds[i] = "missing_required"
    for i in _plant(rng, rows, few, taken):
        sheet_r.rows[i][r_from] = people.break_email(sheet_r.rows[i][r_from], i)
        sheet_r.kinds[i] = "invalid_email"
    for i in _plant(rng, rows, few, taken):
        sheet_r.rows[i][r_on] = _impossible(date.fromisoformat(sheet_r.rows[i][r_on]))
        sheet_r.kinds[i] = "invalid_date"
    for i in _plant(rng, rows, max(2, len(rows) // 20), taken):
        sheet_r.rows[i][r_from] = _messy_email(sheet_r.rows[i][r_from], rng)
        sheet_r.kinds[i] = "email_not_normalised"
    for i in _plant(rng, rows, max(2, len(rows) // 20), taken):
        sheet_r.rows[i][r_on] = _other_format(date.fromisoformat(sheet_r.rows[i][r_on]), rng)
        sheet_r.kinds[i] = "date_not_iso"

    sheets = {"lms_learners": sheet_l, "lms_enrollments": sheet_e, "crm_contacts": sheet_c, "donors": sheet_d,
              "referrals": sheet_r}  # fmt: skip
    # Exact duplicates last: copies of clean rows, placed later in the same export.
    for sheet in sheets.values():
        for _ in range(max(2, len(sheet.rows) // 40)):
            source = rng.choice([i for i, kind in enumerate(sheet.kinds) if kind is None])
            position = rng.randrange(source + 1, len(sheet.rows) + 1)
            sheet.rows.insert(position, list(sheet.rows[source]))
            sheet.kinds.insert(position, "exact_duplicate")
            sheet.raw_lines = {(k + 1 if k >= position else k): v for k, v in sheet.raw_lines.items()}
            sheet.conflicts = {(k + 1 if k >= position else k): v for k, v in sheet.conflicts.items()}
    return sheets


def _split(export: str, count: int) -> list[tuple[str, int, int]]:
    """(file name, first row index, end row index) for each file of an export."""
    names = EXPORTS[export][0]
    if len(names) == 1:
        return [(names[0], 0, count)]
    half = count // 2
    return [(names[0], 0, half), (names[1], half, count)]


def _write_csv(path: Path, sheet: _Sheet, start: int, end: int) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(sheet.header)
    for index in range(start, end):
        if index in sheet.raw_lines:
            buffer.write(sheet.raw_lines[index] + "\r\n")
        else:
            writer.writerow(sheet.rows[index])
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def _write_xlsx(path: Path, sheet: _Sheet, start: int, end: int, title: str) -> None:
    from openpyxl import Workbook

    book = Workbook()
    worksheet = book.active
    worksheet.title = title
    worksheet.append(list(sheet.header))
    for index in range(start, end):
        worksheet.append(sheet.rows[index])
    book.properties.created = book.properties.modified = FIXED_TIME.replace(tzinfo=None)
    book.properties.creator = "legacy export"
    buffer = io.BytesIO()
    book.save(buffer)
    # openpyxl stamps the zip entries and the "modified" property with the time of saving: re-pack with
    # fixed ones, so the same seed writes the same bytes (and a re-import of them lands nothing).
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2025-01-01T00:00:00Z", content)
            target.writestr(fixed, content)
    path.write_bytes(out.getvalue())


def write_exports(world: World, folder: str | Path) -> LegacyTruth:
    """Write the legacy export files to ``folder``; the same world writes the same bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sheets = build(world)
    truth = LegacyTruth()
    for export, sheet in sheets.items():
        truth.files[export] = []
        truth.rows[export] = len(sheet.rows)
        truth.defects[export] = {}
        blanks = dict.fromkeys(sheet.header, 0)
        conflicts = sheet.conflicts
        for name, start, end in _split(export, len(sheet.rows)):
            truth.files[export].append(name)
            if name.endswith(".csv"):
                _write_csv(folder / name, sheet, start, end)
            else:
                _write_xlsx(folder / name, sheet, start, end, export)
            for index in range(start, end):
                key = (name, index - start + 1)
                if sheet.kinds[index]:
                    truth.defects[export][key] = str(sheet.kinds[index])
                if index in conflicts:
                    truth.conflict_kinds[key] = conflicts[index]
                if sheet.kinds[index] != "unparseable":
                    for column, value in zip(sheet.header, sheet.rows[index], strict=True):
                        blanks[column] += value.strip() == ""
        truth.blanks[export] = blanks
    return truth


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="cdp sandbox legacy-exports", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: Any) -> None:
    parser.add_argument("--out", required=True, help="folder to write the export files to")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--learners", type=int, default=1000)


def run(args: Any) -> int:
    truth = write_exports(World(seed=args.seed, learners=args.learners), args.out)
    planted = sum(len(d) for d in truth.defects.values())
    print(f"wrote {sum(len(f) for f in truth.files.values())} files, {truth.total_rows} rows, {planted} planted defects"
          f" to {args.out}")  # fmt: skip
    return 0
