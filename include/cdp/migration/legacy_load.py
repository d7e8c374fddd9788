"""Phase 1, last step: the cleaned legacy records into core, through the sync's own person resolution.

Only rows the cleanup left ``clean`` or ``fixed`` are loaded; a row waiting in ``ops.legacy_review`` (or
set aside as an exact duplicate) never is. Per export, one transaction:

- ``lms_learners`` → people, source identity ``legacy_lms`` = the learner id;
- ``crm_contacts`` → people, source identity ``legacy_crm`` = the contact id; a contact naming its LMS
  learner is that learner's person (the learner's source identity), any other goes by the exact key;
- ``donors`` → givers (source identity ``legacy_donors`` = normalised email ``|`` lower-cased name: one
  email is often a household's) and their gifts in
  ``core.donation`` (source ``legacy_donors``, record id = the donor ref), the amount as exact integer
  minor units of its currency (decimal text, never a float);
- ``lms_enrollments`` → ``core.enrollment`` (source ``legacy_lms``), courses by their legacy code.

People are resolved by ``sql/sync/_resolve_people.sql`` with ``people_update = 'fill'``: the source
identity, else the unambiguous exact key (normalised email + given name), else a new person; legacy values
only fill what the warehouse does not know yet, never overwrite it. A row that cannot be loaded (a gift
whose amount is not exact in its currency's minor units, an enrollment whose learner waits for review) is
kept in ``ops.quarantine`` (source ``legacy``) with the reason. Each export that changed core writes one
audit event ``import`` (entity ``legacy_core.<export>``, counts only); a re-run of the same files changes
nothing and writes no event (the triggers on core record every change, so none means none).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
import sqlparse
from psycopg.types.json import Jsonb

from cdp import audit
from cdp.migration.legacy_import import SOURCE, LegacyFile, fingerprint
from cdp.paths import SQL_DIR
from cdp.sync.engine import lock_people
from cdp.text_rules import normalise_email
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

LEGACY_SQL = SQL_DIR / "legacy"
RESOLVE_PEOPLE = SQL_DIR / "sync" / "_resolve_people.sql"
#: export -> source identity of its people (None: not a people export)
PERSON_SOURCES = {"lms_learners": "legacy_lms", "crm_contacts": "legacy_crm", "donors": "legacy_donors"}
LOAD_ORDER = ("lms_learners", "crm_contacts", "donors", "lms_enrollments")
#: ISO 4217 minor-unit exponents that are not 2, for the currencies we accept
MINOR_EXPONENT = {"JPY": 0}
DECIMAL = re.compile(r"^(\d+)(?:\.(\d+))?$")


@dataclass
class LoadResult:
    loaded: dict[str, int] = field(default_factory=dict)  # export -> rows offered to core
    changed: dict[str, int] = field(default_factory=dict)  # export -> core rows inserted or changed
    rejected: dict[str, int] = field(default_factory=dict)  # export -> rows newly kept in ops.quarantine


def minor_units(amount: str, currency: str) -> int | None:
    """Decimal text to integer minor units of ``currency``; None when that would not be exact."""
    match = DECIMAL.match(amount.strip())
    if not match:
        return None
    exponent = MINOR_EXPONENT.get(currency, 2)
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        return None
    value = Decimal(f"{whole}.{fraction or '0'}") * (10**exponent)
    return int(value)


def giver_key(email: str, name: str) -> str:
    """A giver of the donor spreadsheet: normalised email and name (a household shares one email)."""
    return f"{normalise_email(email)}|{' '.join(name.split()).lower()}"


def _statements(path) -> list[str]:
    text = path.read_text()
    return [s for s in sqlparse.split(text) if sqlparse.format(s, strip_comments=True).strip()]


def _run(conn: psycopg.Connection, path, params: dict) -> None:
    for statement in _statements(path):
        conn.execute(statement, params)


def _batch(conn: psycopg.Connection, export: str, files: Sequence[LegacyFile]) -> int:
    """Temp table legacy_batch: the export's rows the cleanup passed and no open review holds back."""
    conn.execute(
        "CREATE TEMP TABLE legacy_batch ON COMMIT DROP AS"
        " SELECT c.row_key, c.values FROM ops.legacy_clean_record c"
        " WHERE c.export = %s AND c.file_sha256 = ANY(%s) AND c.status IN ('clean', 'fixed')"
        " AND NOT c.values ? '_erased'"
        " AND NOT EXISTS (SELECT 1 FROM ops.legacy_review r WHERE r.export = c.export AND r.row_key = c.row_key"
        "                 AND r.resolved_at IS NULL)",
        (export, [f.sha256 for f in files if f.export == export]),
    )
    conn.execute(
        "CREATE TEMP TABLE legacy_rejected (row_key text, reason text, reason_value text, values jsonb) ON COMMIT DROP"
    )
    return conn.execute("SELECT count(*) AS n FROM legacy_batch").fetchone()["n"]


def _gifts(conn: psycopg.Connection) -> None:
    """Temp table legacy_gifts: each gift with its amount in exact minor units (or rejected)."""
    conn.execute(
        "CREATE TEMP TABLE legacy_gifts (row_key text, donor_ref text, name text, email text, email_key text,"
        " gift_date date, amount_minor bigint, currency text) ON COMMIT DROP"
    )
    gifts, rejected = [], []
    for row in conn.execute("SELECT row_key, values FROM legacy_batch ORDER BY row_key").fetchall():
        values = row["values"]
        currency = values["currency"].strip().upper()
        amount = minor_units(values["amount"], currency)
        if amount is None:
            # The reason without values (staff read it); the amount and its currency beside it (reason_value).
            reason = "amount is not exact in its currency's minor units"
            value = f"{values['amount']!r} {currency} (exponent {MINOR_EXPONENT.get(currency, 2)})"
            rejected.append((row["row_key"], reason, value, Jsonb(values)))
            continue
        email, name = values["email"].strip(), " ".join(values["name"].split())
        gifts.append(
            (row["row_key"], values["donor_ref"].strip(), name, email, giver_key(email, name),
             values["gift_date"].strip(), amount, currency)
        )  # fmt: skip
    with conn.cursor() as cursor:
        cursor.executemany("INSERT INTO legacy_gifts VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", gifts)
        cursor.executemany("INSERT INTO legacy_rejected VALUES (%s, %s, %s, %s)", rejected)


def _changed(conn: psycopg.Connection) -> int:
    """Core rows this transaction inserted or changed (their stamps are the transaction's now())."""
    return conn.execute(
        "SELECT (SELECT count(*) FROM core.person WHERE updated_at = now())"
        " + (SELECT count(*) FROM core.person_source_id WHERE first_seen_at = now())"
        " + (SELECT count(*) FROM core.course WHERE updated_at = now() AND source LIKE 'legacy%')"
        " + (SELECT count(*) FROM core.enrollment WHERE updated_at = now() AND source LIKE 'legacy%')"
        " + (SELECT count(*) FROM core.donation WHERE updated_at = now() AND source LIKE 'legacy%') AS n"
    ).fetchone()["n"]


def load_core(url: str, actor: Actor, run_id: str, files: Sequence[LegacyFile]) -> LoadResult:
    """Load the cleaned rows of these files into core (see the module docstring); idempotent."""
    result = LoadResult()
    print_ = fingerprint(files)
    exports = {f.export for f in files}
    for export in LOAD_ORDER:
        if export not in exports:
            continue
        with transaction(url, actor) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('cdp.legacy:load'))")
            lock_people(conn)
            offered = _batch(conn, export, files)
            source = PERSON_SOURCES.get(export)
            params = {"person_source": source, "people_update": "fill"}
            if export == "donors":
                _gifts(conn)
            if export == "lms_enrollments":
                _run(conn, LEGACY_SQL / "legacy__enrollments.sql", params)
            else:
                _run(conn, LEGACY_SQL / f"legacy__{export}_people.sql", params)
                _run(conn, RESOLVE_PEOPLE, params)
                if export == "donors":
                    _run(conn, LEGACY_SQL / "legacy__donations.sql", params)
            rejected = conn.execute(
                "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, reason_value, payload)"
                " SELECT %s, %s, r.row_key, %s, r.reason, r.reason_value, r.values FROM legacy_rejected r"
                " WHERE NOT EXISTS (SELECT 1 FROM ops.quarantine q WHERE q.source = %s AND q.stream = %s"
                "   AND q.source_record_id = r.row_key AND q.resolved_at IS NULL AND q.reason = r.reason)",
                (SOURCE, export, run_id, SOURCE, export),
            ).rowcount
            changed = _changed(conn)
            if changed or rejected:
                audit.record_event(
                    conn, "import", f"legacy_core.{export}", print_,
                    {"rows_offered": offered, "core_rows_changed": changed, "rows_rejected": rejected,
                     "person_source": source},
                )  # fmt: skip
        result.loaded[export], result.changed[export], result.rejected[export] = offered, changed, rejected
        log.info(
            "legacy load %s: %d rows offered, %d core rows changed, %d newly rejected",
            export, offered, changed, rejected,
        )  # fmt: skip
    return result
