"""The referral program's legacy spreadsheet, generated from the same world, with its discrepancies as truth.

Before ReferralHero the program kept referrals in a shared spreadsheet, one row per friend referred, typed
by hand. This module writes that sheet (CSV and XLSX) from the world's ReferralHero subscribers and plants
what the seed stories say such sheets hold: referrals credited to a different referrer than the platform
credits, referrals only one side has, rows entered twice, typos in emails and rows nobody can parse. It
draws from its own random generator, so no other stream's data or truth changes.

    sheet = legacy_sheet(world)
    sheet.write_csv(path); sheet.write_xlsx(path)
    sheet.discrepancies   # {referral key: kind}: what a parallel run must find, no more, no less

A referral key is the platform subscriber id of the referred friend, or ``legacy:<Ref>`` for a referral
only the sheet has. Platform referrals whose friend or referrer a sheet could not name unambiguously (a
record the sync quarantines, two namesakes sharing one address) are never written, so they are
``missing_in_legacy`` too.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from cdp_sandbox.defaults import SANDBOX_LEARNERS, SANDBOX_SEED
from cdp_sandbox.generator import World

HEADER = ("Ref", "Referrer name", "Referrer email", "Friend name", "Friend email", "Date referred",
          "Reward given")  # fmt: skip

Cell = str | date | None


@dataclass
class LegacySheet:
    rows: list[list[Cell]]  # data rows in file order, without the header
    discrepancies: dict[str, str] = field(default_factory=dict)  # referral key -> kind
    duplicates: dict[str, str] = field(default_factory=dict)  # Ref of a repeated row -> Ref of the first
    typos: set[str] = field(default_factory=set)  # Refs whose friend email has a typo
    unparsable: dict[str, str] = field(default_factory=dict)  # Ref -> reason (its first word)

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for row in self.rows:
                writer.writerow([_csv_cell(cell) for cell in row])
        return path

    def write_xlsx(self, path: str | Path) -> Path:
        from openpyxl import Workbook

        path = Path(path)
        book = Workbook()
        sheet = book.active
        sheet.title = "Referrals"
        sheet.append(list(HEADER))
        for row in self.rows:
            sheet.append(list(row))
        book.save(path)
        return path


def _csv_cell(cell: Cell) -> str:
    if isinstance(cell, date):
        return cell.isoformat()
    return "" if cell is None else str(cell)


def _typo(email: str, rng: random.Random) -> str:
    """One character of the local part replaced by its keyboard neighbour's letter."""
    local, _, domain = email.partition("@")
    position = rng.randrange(len(local))
    replacement = "x" if local[position] != "x" else "z"
    return f"{local[:position]}{replacement}{local[position + 1 :]}@{domain}"


def legacy_sheet(
    world: World,
    *,
    missing_in_legacy: float = 0.08,
    attributed_differently: float = 0.06,
    typo: float = 0.06,
    duplicate: float = 0.05,
    missing_on_platform: float = 0.05,
) -> LegacySheet:
    rng = random.Random(f"{world.seed}:legacy_referrals")
    table = world.table("referralhero", "subscribers")
    n = len(table)
    referrer_of = table.columns["referrer"]
    valid = [i for i in range(n) if int(table.malformed[i]) == 0]
    name = {i: world.name(int(table.person[i])).full for i in valid}
    email = {i: world.email(int(table.person[i])) for i in valid}
    pairs = Counter((name[i].lower(), email[i].lower()) for i in valid)
    names = Counter(name[i].lower() for i in valid)
    nameable = {i for i in valid if pairs[name[i].lower(), email[i].lower()] == 1}
    emails_in_use = {email[i].lower() for i in valid}

    sheet = LegacySheet(rows=[])
    entries: list[tuple[int, list[Cell], str | None]] = []  # (day, row without Ref, duplicate tag)

    def day_of(ts: int) -> date:
        return datetime.fromtimestamp(ts, UTC).date()

    for i in valid:
        referrer = int(referrer_of[i])
        if referrer < 0:
            continue
        key = table.id_of(i)
        if referrer not in nameable or i not in nameable or rng.random() < missing_in_legacy:
            sheet.discrepancies[key] = "missing_in_legacy"
            continue
        credited = referrer
        if rng.random() < attributed_differently:
            others = [j for j in sorted(nameable) if j not in (referrer, i)]
            credited = rng.choice(others)
            sheet.discrepancies[key] = "attributed_differently"
        friend_email = email[i]
        tag = None
        if names[name[i].lower()] == 1 and rng.random() < typo:
            candidate = _typo(friend_email, rng)
            if candidate.lower() not in emails_in_use:
                friend_email, tag = candidate, "typo"
        elif rng.random() < duplicate:
            tag = "duplicate"
        row: list[Cell] = [name[credited], email[credited], name[i], friend_email, day_of(int(table.created[i])),
                           "Free certificate" if rng.random() < 0.2 else ""]  # fmt: skip
        entries.append((int(table.created[i]), row, tag))

    # Friends the sheet credits who never reached the platform: learners who are no subscriber at all.
    subscribers = {int(table.person[i]) for i in range(n)}
    platform_names = {name[i].lower() for i in valid}
    outsiders = [p for p in range(world.learners) if p not in subscribers]
    rng.shuffle(outsiders)
    wanted = round(missing_on_platform * sum(1 for _, _, _ in entries))
    referrers = sorted(nameable)
    for person in outsiders:
        if wanted <= 0:
            break
        friend = world.name(person).full
        if friend.lower() in platform_names:
            continue
        credited = rng.choice(referrers)
        at = int(world.registered[person])
        row = [name[credited], email[credited], friend, world.email(person), day_of(at), ""]
        entries.append((at, row, "legacy_only"))
        wanted -= 1

    # Rows nobody can parse: an impossible date, a friend without an email, a note typed into the date.
    if entries:
        for reason, mutate in (
            ("impossible_date", lambda r: r.__setitem__(4, "31/02/2024")),
            ("missing_required", lambda r: r.__setitem__(3, "")),
            ("unparsable_date", lambda r: r.__setitem__(4, "see notes")),
        ):
            base = list(rng.choice(entries)[1])
            mutate(base)
            entries.append((int(world.end_ts) - 1, base, f"unparsable:{reason}"))

    entries.sort(key=lambda entry: entry[0])
    ref_number = 0
    for _, row, tag in entries:
        ref_number += 1
        ref = f"R{ref_number:05d}"
        cells = list(row)
        if ref_number % 4 == 0 and isinstance(cells[4], date):
            cells[4] = cells[4].strftime("%d/%m/%Y")  # some volunteers typed dates the British way
        sheet.rows.append([ref, *cells])
        if tag == "typo":
            sheet.typos.add(ref)
        elif tag == "legacy_only":
            sheet.discrepancies[f"legacy:{ref}"] = "missing_on_platform"
        elif tag and tag.startswith("unparsable:"):
            sheet.unparsable[ref] = tag.split(":", 1)[1]
        elif tag == "duplicate":
            ref_number += 1
            again = f"R{ref_number:05d}"
            repeated = list(cells)
            repeated[3] = f"  {str(repeated[3]).upper()} "  # pasted again, with the case and spaces it had
            sheet.rows.append([again, *repeated])
            sheet.duplicates[again] = ref
    return sheet


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="the file to write: .csv or .xlsx")
    parser.add_argument(
        "--seed", type=int, default=SANDBOX_SEED, help="the world's seed (as `sandbox serve`)"
    )
    parser.add_argument("--learners", type=int, default=SANDBOX_LEARNERS, help="the world's size")


def run(args) -> int:
    """``cdp sandbox legacy-referrals --out FILE``: the legacy sheet of the world the sandbox serves."""
    sheet = legacy_sheet(World(seed=args.seed, learners=args.learners))
    out = Path(args.out)
    (sheet.write_xlsx if out.suffix.lower() == ".xlsx" else sheet.write_csv)(out)
    print(f"wrote {len(sheet.rows)} rows to {out} ({len(sheet.discrepancies)} planted discrepancies)")
    return 0
