"""Finance ledger connector: the monthly CSV exports the finance system drops into a folder.

The drop is one file per month, ``ledger_YYYY-MM.csv``, with the columns ``transaction_id,
posting_date, account, amount, currency, reference`` (``reference`` is the payment processor's id of
the line, unique per line). Values are yielded as the strings in the file; validation happens
downstream. A row whose posting date cannot be read is kept when its file's month overlaps the
window, so the validator can quarantine it instead of it vanishing here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from cdp.sources.base import ContractError, SourceSettings, Stream, to_utc

SOURCE = "ledger"
COLUMNS = ("transaction_id", "posting_date", "account", "amount", "currency", "reference")
FILE_PATTERN = re.compile(r"^ledger_(\d{4})-(\d{2})\.csv$")


def _folder(settings: SourceSettings) -> Path:
    folder = settings.extra.get("folder") or ""
    if not folder and settings.base_url.startswith("file:"):
        folder = url2pathname(urlsplit(settings.base_url).path)
    if not folder:
        raise ValueError("ledger settings need extra['folder'] or a file:// base_url")
    return Path(folder)


def _month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _posting_moment(text: str) -> datetime | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class LedgerPostingsStream:
    source, name, primary_key, cursor_field = SOURCE, "postings", "reference", "posting_date"
    required_fields = COLUMNS

    def __init__(self, settings: SourceSettings, page_size: int = 5000) -> None:
        self.folder = _folder(settings)
        self.page_size = int(settings.extra.get("page_size", page_size))

    def _files(self, since: datetime | None, until: datetime | None) -> list[Path]:
        files = []
        for path in sorted(self.folder.glob("ledger_*.csv")):
            match = FILE_PATTERN.match(path.name)
            if not match:
                continue
            start, end = _month_bounds(int(match.group(1)), int(match.group(2)))
            if (since is None or end > since) and (until is None or start < until):
                files.append(path)
        return files

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        since, until = to_utc(since), to_utc(until)
        page: list[dict] = []
        for path in self._files(since, until):
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise ContractError(
                        f"ledger: {path.name} lacks columns {missing} (has {reader.fieldnames})"
                    )
                for row in reader:
                    moment = _posting_moment(row["posting_date"])
                    if moment is not None and not (
                        (since is None or moment >= since) and (until is None or moment < until)
                    ):
                        continue
                    page.append(dict(row))
                    if len(page) >= self.page_size:
                        yield page
                        page = []
        if page:
            yield page

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.read(since, until))


def streams(settings: SourceSettings) -> list[Stream]:
    return [LedgerPostingsStream(settings)]
