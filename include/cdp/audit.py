"""The audit trail: writing application events, and proving that nothing was edited or removed.

Rows are chained in the database (see ``sql/definitions/audit/audit_events.sql``): each row's hash is
``sha256(previous hash || canonical text of the row)``. ``verify`` recomputes every hash here, in Python,
from the canonical text, so a superuser who switched the triggers off and edited rows is still caught.
Rows cut from the end leave a valid but shorter chain; an anchor (the head's sequence number and hash,
exported after each run to a file outside the database) catches that.

Since revision 0017 an event is sealed into the chain at its writer's commit, not at its insert (so no
writer waits for another's commit): until then its ``seq`` and ``hash`` are NULL. A commit that finds the
chain's lock busy leaves its events for the next commit; ``seal`` (run first by ``verify``) chains them, and
``verify`` says how many are still unsealed (an unsealed event is not yet protected by the chain).

Personal data stays out of the chain (``sql/definitions/audit/record_change.sql``, since revision 0012):
a change event's row images keep their public columns, and the personal fields sit in
``audit.personal_image``, each sealed with sha256(salt || fields); the event's details name the image set
and a digest over its image ids and seals. ``verify`` recomputes those digests too, so an edited, removed
or forged image is caught, while an image an erasure blanked (content and salt gone, seal kept) still
fits the chain, provided a chained ``privacy_erase`` event with that erasure id names the image's
subject.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cdp.paths import state_dir

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    rows_checked: int
    head: Anchor | None
    first_bad_seq: int | None = None
    problem: str | None = None
    unsealed: int = 0
    #: the newest anchor the file holds (None: no anchor yet)
    last_anchor: int | None = None

    @property
    def unanchored(self) -> int:
        """Rows past the last anchor: a cut of these from the end would not be noticed."""
        if self.head is None:
            return 0
        return max(self.head.seq - (self.last_anchor or 0), 0)

    def summary(self) -> str:
        if self.ok:
            head = f"head seq {self.head.seq} hash {self.head.hash[:16]}…" if self.head else "empty trail"
            pending = (
                f"; {self.unsealed} events not yet sealed (still open, or sealing busy)"
                if self.unsealed
                else ""
            )
            return f"audit chain OK: {self.rows_checked} rows, {head}{pending}; {self._anchoring()}"
        return f"audit chain BROKEN at seq {self.first_bad_seq}: {self.problem}"

    def _anchoring(self) -> str:
        if self.last_anchor is None:
            return f"no anchor yet: {self.unanchored} rows unanchored{self.awaiting()}"
        return f"{self.unanchored} rows past the last anchor (seq {self.last_anchor}){self.awaiting()}"

    def awaiting(self) -> str:
        """Which rows a cut from the end would take unnoticed, as the operator can look them up."""
        if self.head is None or not self.unanchored:
            return ""
        first = (self.last_anchor or 0) + 1
        return f": seq {first}..{self.head.seq} await an anchor (the next pipeline task, or `cdp audit head --export`)"


def record_event(
    conn: psycopg.Connection,
    action: str,
    entity_type: str,
    entity_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    *,
    before: Any = None,
    after: Any = None,
) -> int:
    """Append one application event (import, merge, correction, …) in the caller's transaction.

    Returns the event's id (``event_id``); its place in the chain (``seq``) is given at commit.
    """
    row = conn.execute(
        "SELECT audit.record_event(%s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb) AS seq",
        (
            action,
            entity_type,
            entity_id,
            json.dumps(details or {}, default=str),
            None if before is None else json.dumps(before, default=str),
            None if after is None else json.dumps(after, default=str),
        ),
    ).fetchone()
    return int(_first(row))


def _first(row: Any) -> Any:
    return row[next(iter(row))] if isinstance(row, Mapping) else row[0]


def head(conn: psycopg.Connection) -> Anchor | None:
    row = conn.execute(
        "SELECT seq, hash FROM audit.audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    values = list(row.values()) if isinstance(row, Mapping) else list(row)
    return Anchor(int(values[0]), str(values[1]))


def seal(conn: psycopg.Connection) -> int | None:
    """Chain the committed events no commit could seal; None when the lock is busy or ``conn`` is mid-transaction.

    Runs in a transaction of its own, committed at once, so the chain's lock is held only for the seal.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return None
    with conn.transaction():
        allowed = _first(
            conn.execute("SELECT has_function_privilege('audit.seal()', 'EXECUTE') AS ok").fetchone()
        )
        row = conn.execute("SELECT audit.seal() AS sealed").fetchone() if allowed else {"sealed": None}
    if not conn.autocommit:
        conn.commit()
    sealed = _first(row)
    return None if sealed is None else int(sealed)


def unsealed_count(conn: psycopg.Connection) -> int:
    return int(
        _first(conn.execute("SELECT count(*) AS n FROM audit.audit_events WHERE hash IS NULL").fetchone())
    )


def default_anchor_file() -> Path:
    return Path(os.environ.get("CDP_AUDIT_ANCHOR_FILE", state_dir() / "audit-anchors.jsonl"))


ANCHOR_FILE_MODE = 0o600


def _open_anchor_file(path: Path) -> int:
    """The anchor file opened for appending, for its owner only from the first byte.

    Never through a symlink (O_NOFOLLOW), never a file someone else owns or anything but a regular file; an
    older file that others could read or write is narrowed to 0600.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags | os.O_CREAT | os.O_EXCL, ANCHOR_FILE_MODE)
    except FileExistsError:
        try:
            descriptor = os.open(path, flags)
        except OSError as error:
            raise AnchorFileRefused(f"{path}: cannot append safely ({error.strerror}; a symlink?)") from error
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(descriptor)
        raise AnchorFileRefused(f"{path} is not a regular file owned by this user: not writing the anchor")
    if stat.S_IMODE(info.st_mode) & ~ANCHOR_FILE_MODE:
        os.fchmod(descriptor, ANCHOR_FILE_MODE)
    return descriptor


class AnchorFileRefused(RuntimeError):
    """The anchor file is a symlink, someone else's, or not a regular file: nothing was written."""


def last_anchor(path: Path) -> Anchor | None:
    """The newest anchor in the file (its last line), without reading the whole file."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - 4096, 0))
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    if not lines:
        return None
    record = json.loads(lines[-1])
    return Anchor(int(record["seq"]), str(record["hash"]))


def export_head(
    conn: psycopg.Connection,
    path: Path | None = None,
    *,
    run_id: str | None = None,
    only_if_moved: bool = False,
) -> Anchor | None:
    """Append the current head to the anchor file (JSON lines) so a later cut from the end is visible.

    With ``only_if_moved``, nothing is written when the file's last anchor is the head already (the anchor
    step after every task of every run uses this, so runs that write no audit event add no line). The head
    counts sealed events only, so what a busy lock left unsealed is chained first (on an idle ``conn``).
    """
    seal(conn)
    anchor = head(conn)
    if anchor is None:
        return None
    path = path or default_anchor_file()
    if only_if_moved:
        previous = last_anchor(path)
        if previous is not None and previous.seq >= anchor.seq:
            return None
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    line = {
        "seq": anchor.seq,
        "hash": anchor.hash,
        "exported_at": datetime.now(UTC).isoformat(),
        "run_id": run_id,
    }
    descriptor = _open_anchor_file(path)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        # One write of one short line to an O_APPEND file: concurrent tasks' lines never interleave.
        handle.write(json.dumps(line) + "\n")
    return anchor


def read_anchors(path: Path) -> list[Anchor]:
    if not path.exists():
        return []
    anchors = []
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            anchors.append(Anchor(int(record["seq"]), str(record["hash"])))
    return anchors


def _row_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def verify(conn: psycopg.Connection, anchors: Iterable[Anchor] = ()) -> VerifyReport:
    """Recompute the chain from the first row and report the first row that does not fit.

    Seals the committed events still unsealed first (when ``conn`` is idle), then reports those left.
    """
    seal(conn)
    expected_by_seq = {anchor.seq: anchor.hash for anchor in anchors}
    expected_seq = 1
    previous_hash = GENESIS_HASH
    last: Anchor | None = None
    rows = 0
    # A server-side cursor streams the trail, so verifying millions of events needs little memory.
    with conn.cursor(name="audit_verify", row_factory=psycopg.rows.tuple_row) as cursor:
        cursor.itersize = 5000
        cursor.execute(
            "SELECT seq, prev_hash, hash, audit.canonical_text(e) FROM audit.audit_events e"
            " WHERE seq IS NOT NULL ORDER BY seq"
        )
        for seq, prev_hash, stored_hash, canonical in cursor:
            rows += 1
            if seq != expected_seq:
                problem = (
                    f"rows {expected_seq}..{seq - 1} are missing"
                    if seq > expected_seq
                    else "sequence out of order"
                )
                return VerifyReport(False, rows, last, expected_seq, problem)
            if prev_hash != previous_hash:
                return VerifyReport(
                    False, rows, last, seq, "prev_hash does not match the previous row's hash"
                )
            if _row_hash(prev_hash, canonical) != stored_hash:
                return VerifyReport(
                    False, rows, last, seq, "row content does not match its hash (edited row or hash)"
                )
            anchored = expected_by_seq.get(seq)
            if anchored is not None and anchored != stored_hash:
                return VerifyReport(
                    False, rows, last, seq, "row differs from the exported anchor (chain rewritten)"
                )
            previous_hash = stored_hash
            last = Anchor(seq, stored_hash)
            expected_seq += 1
    newest_anchor = max(expected_by_seq, default=0)
    if newest_anchor >= expected_seq:
        return VerifyReport(
            False,
            rows,
            last,
            expected_seq,
            f"rows {expected_seq}..{newest_anchor} were removed from the end (anchor seq {newest_anchor})",
        )
    bad_seq, problem = _verify_personal_images(conn)
    if problem is not None:
        return VerifyReport(False, rows, last, bad_seq, problem)
    return VerifyReport(True, rows, last, unsealed=unsealed_count(conn), last_anchor=newest_anchor or None)


def _set_digest(images: list[tuple[str, str]]) -> str:
    text = ",".join(f"{image_id}:{seal}" for image_id, seal in images)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _verify_personal_images(conn: psycopg.Connection) -> tuple[int | None, str | None]:
    """Every image set named by the chain is complete and unedited; every blanked image was erased lawfully."""
    tuples = psycopg.rows.tuple_row
    chained = {
        str(image_set): (int(seq), digest)
        for seq, image_set, digest in conn.cursor(row_factory=tuples).execute(
            "SELECT seq, details ->> 'personal_images', details ->> 'personal_digest' FROM audit.audit_events"
            " WHERE details ? 'personal_images'"
        )
    }
    erasures: dict[str, set[str]] = {}
    for erasure_id, subjects in conn.cursor(row_factory=tuples).execute(
        "SELECT details ->> 'erasure_id', details -> 'subjects' FROM audit.audit_events"
        " WHERE action = 'privacy_erase' AND details ? 'erasure_id'"
    ):
        erasures[erasure_id] = set(subjects or [])

    def check_set(image_set: str, images: list[tuple[str, str]]) -> tuple[int | None, str | None]:
        seq, digest = chained.pop(image_set, (None, None))
        if seq is None:
            return None, f"personal image set {image_set} belongs to no audit event (forged images)"
        if _set_digest(images) != digest:
            return seq, "personal images differ from the digest the chain holds (edited, added or removed)"
        return None, None

    current: str | None = None
    images: list[tuple[str, str]] = []
    with conn.cursor(name="audit_verify_images", row_factory=tuples) as cursor:
        cursor.itersize = 5000
        cursor.execute("SELECT * FROM audit.personal_image_seals()")
        for image_set, _ordinal, image_id, seal, content_matches, erasure_id, subject_id in cursor:
            image_set = str(image_set)
            if image_set != current:
                if current is not None:
                    bad = check_set(current, images)
                    if bad[1]:
                        return bad
                current, images = image_set, []
            if not content_matches:
                seq = chained.get(image_set, (None, None))[0]
                return seq, f"personal image {image_id} does not match its seal (edited image)"
            if erasure_id is not None:
                subjects = erasures.get(erasure_id)
                if subjects is None or (subject_id is not None and subject_id not in subjects):
                    seq = chained.get(image_set, (None, None))[0]
                    return seq, f"personal image {image_id} was blanked without an erasure of its subject"
            images.append((str(image_id), seal))
    if current is not None:
        bad = check_set(current, images)
        if bad[1]:
            return bad
    if chained:
        seq = min(seq for seq, _ in chained.values())
        return seq, "the personal images of this event are missing"
    return None, None
