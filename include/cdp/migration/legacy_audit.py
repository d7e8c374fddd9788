"""Phase 1 of the migration: land the legacy exports as received, profile them, clean what is safe, queue the rest.

The exports (LMS learners and enrollments as CSV, the CRM export as CSV, the donor spreadsheet as XLSX,
the referral spreadsheet as XLSX and CSV; names and columns in ``EXPORTS``) are read from one folder.

1. ``import_exports``: each file's rows go to ``raw.records`` (source ``legacy``, stream = the export,
   record id ``<sha256 prefix>:<row>``) exactly as read, a row that cannot be parsed kept with its reason;
   ``raw.legacy_file`` remembers each content, so the same file again lands nothing.
2. ``profile``: completeness per field, values breaking each rule, exact duplicates, orphans (enrollments
   whose learner the LMS export does not have), conflicting ids (a CRM contact whose LMS id names a learner
   with another email), and the data accuracy rate: the share of records without any error.
3. ``cleanup``: trims and lower-cases emails, writes phones in E.164, dates as ISO, sets exact duplicates
   aside; each export's fixes are one audit event (counts and row ids, never values). What cannot be fixed
   safely goes to ``ops.legacy_review`` with the reason. Then the cleaned records are profiled again.

Every step is idempotent: the same files give the same rows, profile, fixes and queue, and no new events.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cdp import audit
from cdp.migration.legacy_formats import EXPORTS
from cdp.sources.validation import CURRENCIES, EMAIL
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

SOURCE = "legacy"

REQUIRED = {
    "lms_learners": ("learner_id", "first_name", "email", "registered_on"),
    "lms_enrollments": ("enrollment_id", "learner_id", "course_code", "enrolled_on"),
    "crm_contacts": ("contact_id", "last_name", "email"),
    "donors": ("donor_ref", "email", "gift_date", "amount", "currency"),
    "referrals": ("referral_id", "referrer_email", "referred_email", "referred_on"),
}
EMAILS = {
    "lms_learners": ("email",),
    "crm_contacts": ("email",),
    "donors": ("email",),
    "referrals": ("referrer_email", "referred_email"),
}
DATES = {
    "lms_learners": ("date_of_birth", "registered_on"),
    "lms_enrollments": ("enrolled_on",),
    "crm_contacts": ("created_on",),
    "donors": ("gift_date",),
    "referrals": ("referred_on",),
}
PHONES = {"lms_learners": ("phone",), "crm_contacts": ("phone",)}
#: Rules whose breaches the cleanup fixes by itself; every other rule's breaches are queued for people.
FIXABLE_RULES = frozenset({"email_not_normalised", "phone_not_e164", "date_not_iso", "exact_duplicate"})
RULES = (
    "unparseable", "missing_required", "invalid_email", "email_not_normalised", "invalid_date", "date_not_iso",
    "invalid_phone", "phone_not_e164", "invalid_amount", "invalid_currency", "exact_duplicate", "orphan",
    "conflicting_id",
)  # fmt: skip
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SLASHED_YMD = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")
DOTTED_DMY = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
E164 = re.compile(r"^\+\d{7,15}$")
AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")


class LegacyFormatError(ValueError):
    """A file is not the export it is named after (wrong header): nothing of it lands; fix or rename it."""


class LegacyAccuracyBelowTarget(RuntimeError):
    """After the safe fixes, the data accuracy rate is not above the target: people must decide the rest."""


@dataclass(frozen=True)
class LegacyFile:
    export: str
    name: str
    sha256: str
    rows: int
    new: bool


@dataclass(frozen=True)
class Row:
    export: str
    key: str  # raw.records.source_record_id
    file_sha256: str
    number: int
    values: dict[str, str] | None  # None when the row could not be parsed
    parse_error: str | None = None


@dataclass
class Profile:
    fingerprint: str
    stage: str
    records: int = 0
    records_with_errors: int = 0
    completeness: dict[str, dict[str, tuple[int, int]]] = field(
        default_factory=dict
    )  # export->field->(filled, n)
    invalid: dict[str, dict[str, int]] = field(default_factory=dict)  # export -> rule -> rows breaking it
    errors_by_export: dict[str, tuple[int, int]] = field(
        default_factory=dict
    )  # export -> (with errors, rows)
    conflict_kinds: dict[str, int] = field(default_factory=dict)
    row_errors: dict[str, list[tuple[str, str]]] = field(default_factory=dict, repr=False)  # row key -> rules

    @property
    def accuracy_rate(self) -> float | None:
        return None if self.records == 0 else (self.records - self.records_with_errors) / self.records

    def as_summary(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "stage": self.stage,
            "records": self.records,
            "records_with_errors": self.records_with_errors,
            "accuracy_rate": self.accuracy_rate,
            "exports": {
                export: {
                    "rows": self.errors_by_export[export][1],
                    "rows_with_errors": self.errors_by_export[export][0],
                    "completeness": {
                        name: {"filled": filled, "rows": rows, "share": (filled / rows) if rows else None}
                        for name, (filled, rows) in self.completeness[export].items()
                    },
                    "invalid": dict(self.invalid[export]),
                }
                for export in self.errors_by_export
            },
            "duplicates": sum(counts.get("exact_duplicate", 0) for counts in self.invalid.values()),
            "orphans": sum(counts.get("orphan", 0) for counts in self.invalid.values()),
            "conflicting_ids": dict(self.conflict_kinds),
        }


# ------------------------------------------------------------------------------------------------ import
def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value if isinstance(value, int | float | str | bool) else str(value)


def read_file(path: Path, header: Sequence[str]) -> list[dict[str, Any]]:
    """The file's data rows as raw payload parts: ``cells`` as read, ``values`` by column, or the parse error."""
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        lines = [[_cell(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
    else:
        lines = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    if not lines or [str(c or "").strip() for c in lines[0][: len(header)]] != list(header):
        found = lines[0] if lines else []
        raise LegacyFormatError(f"{path.name}: header {found!r} is not the expected {list(header)!r}")
    out = []
    for number, cells in enumerate(lines[1:], start=1):
        cells = list(cells)
        # Spreadsheets pad short rows with empty trailing cells; only cells beyond the header that hold
        # something make a row unparseable.
        while len(cells) > len(header) and cells[-1] in (None, ""):
            cells.pop()
        entry: dict[str, Any] = {"row": number, "cells": cells}
        if len(cells) != len(header):
            entry["values"] = None
            entry["parse_error"] = f"expected {len(header)} fields, got {len(cells)}"
        else:
            entry["values"] = {
                name: "" if v is None else str(v) for name, v in zip(header, cells, strict=True)
            }
            entry["parse_error"] = None
        out.append(entry)
    return out


def import_exports(url: str, actor: Actor, run_id: str, folder: str | Path) -> list[LegacyFile]:
    """Land every export file found in ``folder``; a content already landed lands nothing again."""
    folder = Path(folder)
    found: list[LegacyFile] = []
    for export, (names, header) in EXPORTS.items():
        for name in names:
            path = folder / name
            if not path.exists():
                continue
            content = path.read_bytes()
            sha = hashlib.sha256(content).hexdigest()
            rows = read_file(path, header)
            with transaction(url, actor) as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cdp.legacy:{export}",))
                inserted = conn.execute(
                    "INSERT INTO raw.legacy_file (export, file_name, format, sha256, rows, run_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (export, sha256) DO NOTHING RETURNING file_id",
                    (export, name, path.suffix.lstrip("."), sha, len(rows), run_id),
                ).fetchone()
                if inserted:
                    with conn.cursor().copy(
                        "COPY raw.records (source, stream, source_record_id, run_id, payload) FROM STDIN"
                    ) as copy:
                        for entry in rows:
                            payload = {"file": name, "sha256": sha, **entry}
                            copy.write_row(
                                (SOURCE, export, f"{sha[:16]}:{entry['row']}", run_id, Jsonb(payload))
                            )
                    unparseable = sum(1 for entry in rows if entry["parse_error"])
                    audit.record_event(
                        conn, "import", f"legacy.{export}", sha,
                        {"file": name, "sha256": sha, "rows": len(rows), "unparseable": unparseable},
                    )  # fmt: skip
            log.info(
                "legacy %s: %s, %d rows, %s",
                export,
                name,
                len(rows),
                "landed" if inserted else "already landed",
            )
            found.append(LegacyFile(export, name, sha, len(rows), bool(inserted)))
    if not found:
        raise FileNotFoundError(
            f"no legacy export found in {folder} (expected {sorted(name for names, _ in EXPORTS.values() for name in names)})"
        )
    return found


def fingerprint(files: Iterable[LegacyFile]) -> str:
    return hashlib.sha256("\n".join(sorted(f"{f.export}:{f.sha256}" for f in files)).encode()).hexdigest()


def load_rows(conn: psycopg.Connection, files: Sequence[LegacyFile]) -> dict[str, list[Row]]:
    """The landed rows of these files, per export in reading order (file order, then row)."""
    order = {name: k for _, (names, _) in EXPORTS.items() for k, name in enumerate(names)}
    rows: dict[str, list[Row]] = {}
    for file in sorted(files, key=lambda f: (f.export, order.get(f.name, 99))):
        records = conn.execute(
            "SELECT source_record_id, payload FROM raw.records WHERE source = %s AND stream = %s"
            " AND source_record_id LIKE %s AND NOT payload ? '_erased' ORDER BY (payload ->> 'row')::int",
            (SOURCE, file.export, f"{file.sha256[:16]}:%"),
        ).fetchall()
        for record in records:
            payload = record["payload"]
            rows.setdefault(file.export, []).append(
                Row(file.export, record["source_record_id"], file.sha256, int(payload["row"]), payload["values"],
                    payload.get("parse_error"))
            )  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------------ rules
def _blank(value: str | None) -> bool:
    return value is None or value.strip() == ""


def check_email(value: str) -> str | None:
    normalised = value.strip().lower()
    if not EMAIL.match(normalised):
        return "invalid_email"
    return "email_not_normalised" if normalised != value else None


def fix_email(value: str) -> str:
    return value.strip().lower()


def _valid_day(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return int(year) >= 1900


def check_date(value: str) -> str | None:
    text = value.strip()
    if ISO_DATE.match(text):
        return None if _valid_day(text[:4], text[5:7], text[8:10]) else "invalid_date"
    for pattern, parts in ((SLASHED_YMD, (1, 2, 3)), (DOTTED_DMY, (3, 2, 1))):
        match = pattern.match(text)
        if match:
            year, month, day = (match.group(k) for k in parts)
            return "date_not_iso" if _valid_day(year, month, day) else "invalid_date"
    return "invalid_date"


def fix_date(value: str) -> str:
    text = value.strip()
    match = SLASHED_YMD.match(text)
    if match:
        return f"{match.group(1)}-{match.group(2)}-{match.group(3)}"
    match = DOTTED_DMY.match(text)
    if match:
        return f"{match.group(3)}-{match.group(2)}-{match.group(1)}"
    return text


def check_phone(value: str) -> str | None:
    if E164.match(value):
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    # Only a number written with its country code (a leading +) can be put into E.164 without guessing.
    if value.lstrip("( ").startswith("+") and 7 <= len(digits) <= 15 and not re.search(r"[A-Za-z]", value):
        return "phone_not_e164"
    return "invalid_phone"


def fix_phone(value: str) -> str:
    return "+" + "".join(ch for ch in value if ch.isdigit())


def row_rules(export: str, values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(rule, field) breaches of one parsed row, without the rules that need other rows."""
    breaches: list[tuple[str, str]] = []
    missing = [name for name in REQUIRED[export] if _blank(values.get(name))]
    if missing:
        breaches.append(("missing_required", ",".join(missing)))
    for name in EMAILS.get(export, ()):
        if not _blank(values[name]):
            rule = check_email(values[name])
            if rule:
                breaches.append((rule, name))
    for name in DATES.get(export, ()):
        if not _blank(values[name]):
            rule = check_date(values[name])
            if rule:
                breaches.append((rule, name))
    for name in PHONES.get(export, ()):
        if not _blank(values[name]):
            rule = check_phone(values[name])
            if rule:
                breaches.append((rule, name))
    if export == "donors":
        if not _blank(values["amount"]) and not AMOUNT.match(values["amount"].strip()):
            breaches.append(("invalid_amount", "amount"))
        if not _blank(values["currency"]) and values["currency"].strip() not in CURRENCIES:
            breaches.append(("invalid_currency", "currency"))
    return breaches


def profile_rows(stage: str, print_: str, rows: Mapping[str, Sequence[Row]]) -> Profile:
    """Every rule over every row; cross-row rules (duplicates, orphans, conflicts) within these rows."""
    result = Profile(print_, stage)
    learners = rows.get("lms_learners", ())
    learner_email = {
        r.values["learner_id"].strip(): r.values["email"].strip().lower()
        for r in learners
        if r.values is not None and not _blank(r.values["learner_id"])
    }
    learner_emails = set(learner_email.values())
    for export, (_, header) in EXPORTS.items():
        export_rows = rows.get(export)
        if export_rows is None:
            continue
        filled = dict.fromkeys(header, 0)
        parsed = 0
        invalid = dict.fromkeys(RULES, 0)
        seen: dict[tuple[str, ...], str] = {}
        with_errors = 0
        for row in export_rows:
            breaches: list[tuple[str, str]] = []
            if row.values is None:
                breaches.append(("unparseable", row.parse_error or "unparseable"))
            else:
                parsed += 1
                for name in header:
                    filled[name] += not _blank(row.values[name])
                breaches += row_rules(export, row.values)
                identity = tuple(row.values[name] for name in header)
                if identity in seen:
                    breaches.append(("exact_duplicate", seen[identity]))
                else:
                    seen[identity] = row.key
                if export == "lms_enrollments":
                    learner = row.values["learner_id"].strip()
                    if learner and learner not in learner_email:
                        breaches.append(("orphan", "learner_id"))
                if export == "crm_contacts":
                    linked = row.values["lms_learner_id"].strip()
                    email = row.values["email"].strip().lower()
                    if linked and learner_email.get(linked) != email:
                        kind = (
                            "unknown_id" if linked not in learner_email
                            else "same_email_different_id" if email in learner_emails
                            else "same_id_different_person"
                        )  # fmt: skip
                        breaches.append(("conflicting_id", kind))
                        result.conflict_kinds[kind] = result.conflict_kinds.get(kind, 0) + 1
            for rule in {rule for rule, _ in breaches}:
                invalid[rule] += 1
            if breaches:
                with_errors += 1
                result.row_errors[row.key] = breaches
        result.completeness[export] = {name: (filled[name], parsed) for name in header}
        result.invalid[export] = {rule: count for rule, count in invalid.items() if count}
        result.errors_by_export[export] = (with_errors, len(export_rows))
        result.records += len(export_rows)
        result.records_with_errors += with_errors
    return result


def _store_profile(conn: psycopg.Connection, run_id: str, profile: Profile) -> bool:
    """Record the profile unless this fingerprint and stage already were; True when new."""
    inserted = conn.execute(
        "INSERT INTO ops.legacy_profile (fingerprint, stage, run_id, records, records_with_errors, accuracy_rate,"
        " summary) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (fingerprint, stage) DO NOTHING RETURNING 1",
        (profile.fingerprint, profile.stage, run_id, profile.records, profile.records_with_errors,
         profile.accuracy_rate, Jsonb(profile.as_summary())),
    ).fetchone()  # fmt: skip
    if not inserted:
        return False
    metrics: list[tuple[Any, ...]] = []
    for export, fields in profile.completeness.items():
        for name, (filled, parsed) in fields.items():
            metrics.append((export, "completeness", name, filled, parsed))
        total = profile.errors_by_export[export][1]
        for rule, count in profile.invalid[export].items():
            kind = {"exact_duplicate": "duplicates", "orphan": "orphans", "conflicting_id": "conflicts"}.get(
                rule, "invalid"
            )
            metrics.append((export, kind, rule, count, total))
        metrics.append((export, "errors", "rows_with_errors", profile.errors_by_export[export][0], total))
    with conn.cursor().copy(
        "COPY ops.legacy_profile_metric (fingerprint, stage, export, kind, subject, count, total) FROM STDIN"
    ) as copy:
        for metric in metrics:
            copy.write_row((profile.fingerprint, profile.stage, *metric))
    return True


def profile(url: str, actor: Actor, run_id: str, files: Sequence[LegacyFile]) -> Profile:
    """Profile the files as received (stage 'before')."""
    print_ = fingerprint(files)
    with transaction(url, actor) as conn:
        result = profile_rows("before", print_, load_rows(conn, files))
        new = _store_profile(conn, run_id, result)
    log.info(
        "legacy profile before cleanup: %d records, %d with errors, accuracy %.2f%%%s",
        result.records, result.records_with_errors, 100 * (result.accuracy_rate or 0), "" if new else " (unchanged)",
    )  # fmt: skip
    return result


# ------------------------------------------------------------------------------------------------ cleanup
@dataclass
class CleanupResult:
    fixed: dict[str, dict[str, int]]  # export -> rule -> rows fixed
    duplicates: dict[str, int]
    queued: dict[str, int]  # export -> rows newly queued for review
    changed_rows: int
    after: Profile


def _cleaned(export: str, values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    cleaned = dict(values)
    fixes: list[str] = []
    for name in EMAILS.get(export, ()):
        if not _blank(cleaned[name]) and check_email(cleaned[name]) == "email_not_normalised":
            cleaned[name] = fix_email(cleaned[name])
            fixes.append(f"email_not_normalised:{name}")
    for name in DATES.get(export, ()):
        if not _blank(cleaned[name]) and check_date(cleaned[name]) == "date_not_iso":
            cleaned[name] = fix_date(cleaned[name])
            fixes.append(f"date_not_iso:{name}")
    for name in PHONES.get(export, ()):
        if not _blank(cleaned[name]) and check_phone(cleaned[name]) == "phone_not_e164":
            cleaned[name] = fix_phone(cleaned[name])
            fixes.append(f"phone_not_e164:{name}")
    return cleaned, fixes


def _reason(rule: str, detail: str) -> str:
    return {
        "unparseable": f"row could not be parsed: {detail}",
        "missing_required": f"missing required field(s): {detail}",
        "invalid_email": f"invalid email in {detail}",
        "invalid_date": f"impossible or unreadable date in {detail}",
        "invalid_phone": f"phone in {detail} cannot be put in E.164 without guessing the country",
        "invalid_amount": f"amount in {detail} is not a plain decimal with at most 2 places",
        "invalid_currency": f"unknown currency in {detail}",
        "orphan": "enrollment names a learner the LMS export does not have",
        "conflicting_id": f"CRM contact's LMS learner id conflicts with the LMS export ({detail})",
    }.get(rule, f"{rule}: {detail}")


def cleanup(url: str, actor: Actor, run_id: str, files: Sequence[LegacyFile]) -> CleanupResult:
    """Fix what is safe, set exact duplicates aside, queue the rest; then profile the cleaned records."""
    print_ = fingerprint(files)
    fixed: dict[str, dict[str, int]] = {}
    duplicates: dict[str, int] = {}
    queued: dict[str, int] = {}
    changed_total = 0
    with transaction(url, actor) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cdp.legacy:cleanup'))")
        rows = load_rows(conn, files)
        cleaned_rows: dict[str, list[Row]] = {}
        plan: list[tuple[Row, dict[str, str] | None, list[str], str, str | None]] = []
        for export, export_rows in rows.items():
            header = EXPORTS[export][1]
            seen: dict[tuple[str, ...], str] = {}
            for row in export_rows:
                if row.values is None:
                    cleaned_rows.setdefault(export, []).append(row)
                    plan.append((row, None, [], "review", None))
                    continue
                values, fixes = _cleaned(export, row.values)
                identity = tuple(row.values[name] for name in header)
                if identity in seen:
                    plan.append((row, values, ["exact_duplicate"], "duplicate", seen[identity]))
                    continue
                seen[identity] = row.key
                cleaned = Row(export, row.key, row.file_sha256, row.number, values)
                cleaned_rows.setdefault(export, []).append(cleaned)
                plan.append((row, values, fixes, "fixed" if fixes else "clean", None))
        after = profile_rows("after", print_, cleaned_rows)
        for export in rows:
            fixed[export], duplicates[export], queued[export] = {}, 0, 0
        changed_keys: dict[str, list[str]] = {}
        for row, values, fixes, status, duplicate_of in plan:
            if status != "duplicate" and row.key in after.row_errors:
                status = "review"
            changed = conn.execute(
                "INSERT INTO ops.legacy_clean_record (export, row_key, file_sha256, row_number, values, fixes,"
                " status, duplicate_of, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (export, row_key) DO UPDATE SET values = excluded.values, fixes = excluded.fixes,"
                " status = excluded.status, duplicate_of = excluded.duplicate_of, run_id = excluded.run_id,"
                " updated_at = now()"
                " WHERE (ops.legacy_clean_record.values, ops.legacy_clean_record.fixes, ops.legacy_clean_record.status,"
                "        ops.legacy_clean_record.duplicate_of) IS DISTINCT FROM"
                "       (excluded.values, excluded.fixes, excluded.status, excluded.duplicate_of)",
                (row.export, row.key, row.file_sha256, row.number, None if values is None else Jsonb(values),
                 fixes, status, duplicate_of, run_id),
            ).rowcount  # fmt: skip
            if changed:
                changed_keys.setdefault(row.export, []).append(row.key)
                for fix in fixes:
                    rule = fix.split(":")[0]
                    if rule != "exact_duplicate":
                        fixed[row.export][rule] = fixed[row.export].get(rule, 0) + 1
                duplicates[row.export] += status == "duplicate"
            for rule, detail in after.row_errors.get(row.key, []) if status == "review" else []:
                queued[row.export] += conn.execute(
                    "INSERT INTO ops.legacy_review (export, row_key, rule, reason, payload, run_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (export, row_key, rule) DO NOTHING",
                    (row.export, row.key, rule, _reason(rule, detail),
                     Jsonb({"values": row.values, "parse_error": row.parse_error}), run_id),
                ).rowcount  # fmt: skip
        for export, keys in changed_keys.items():
            changed_total += len(keys)
            # One event per export's correction batch: what was done, to which rows; never the values.
            audit.record_event(
                conn, "correction", f"legacy.{export}", print_,
                {"fixed": fixed[export], "duplicates_set_aside": duplicates[export],
                 "queued_for_review": queued[export], "rows": len(keys), "row_keys": keys},
            )  # fmt: skip
        _store_profile(conn, run_id, after)
    log.info(
        "legacy cleanup: %d rows changed, %d fixes, %d duplicates set aside, %d newly queued; accuracy after %.2f%%",
        changed_total, sum(sum(v.values()) for v in fixed.values()), sum(duplicates.values()), sum(queued.values()),
        100 * (after.accuracy_rate or 0),
    )  # fmt: skip
    return CleanupResult(fixed, duplicates, queued, changed_total, after)


def stored_profiles(url: str, files: Sequence[LegacyFile]) -> dict[str, dict[str, Any]]:
    """The stored 'before' and 'after' summaries of these files (what the report shows)."""
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(
            "SELECT stage, summary, profiled_at FROM ops.legacy_profile WHERE fingerprint = %s",
            (fingerprint(files),),
        ).fetchall()
    return {row["stage"]: {**row["summary"], "profiled_at": row["profiled_at"].isoformat()} for row in rows}


def check_target(summaries: Mapping[str, Mapping[str, Any]], target: float) -> None:
    after = summaries["after"]["accuracy_rate"]
    if after is None or after <= target:
        raise LegacyAccuracyBelowTarget(
            f"LegacyAccuracyBelowTarget: data accuracy after cleanup is {100 * (after or 0):.2f}%, target above "
            f"{100 * target:.0f}%: see ops.legacy_review for what people must decide"
        )


def summary_json(summaries: Mapping[str, Any]) -> str:
    return json.dumps(summaries, indent=2, sort_keys=True, default=str)
