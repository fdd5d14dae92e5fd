"""The review log as a hash chain: each entry carries the hash of the one before it and of its own content.

The schema already refuses UPDATE, DELETE, REPLACE and TRUNCATE of `review_log` (migrations 0002 and
0006_review); the chain goes further and shows whether the log that is there is the log that was written:
a changed, removed or inserted entry breaks every hash after it. `verify_chain` says from which entry on.
The links (`flag_id`, `appearance_id`) are not hashed: deleting a superseded appearance sets them NULL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import ReviewLog

GENESIS = "0" * 64  # the `prev_hash` of the first entry
CHAIN_LOCK = 0x6B77726C  # "kwrl": the PostgreSQL advisory lock held while appending (one chain, no forks)


def digest(prev_hash: str, action: str, old: Any, new: Any, reviewer: str, at: datetime, note: str | None) -> str:
    """SHA-256 over the previous hash and one decision, in one canonical JSON form (never change it: the
    hashes already written depend on it)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    content = {
        "prev": prev_hash,
        "action": action,
        "old": old,
        "new": new,
        "reviewer": reviewer,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "note": note,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entry_digest(prev_hash: str, entry: ReviewLog) -> str:
    return digest(prev_hash, entry.action, entry.old_value, entry.new_value, entry.reviewer, entry.at, entry.note)


def seal(session: Session, entry: ReviewLog) -> None:
    """Chain `entry` (not yet flushed) to the newest entry; appends take turns so the chain never forks."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
    # SQLite: every write transaction begins IMMEDIATE, so it already holds the one write lock here.
    last = session.scalar(select(ReviewLog.entry_hash).order_by(ReviewLog.id.desc()).limit(1))
    entry.prev_hash = last or GENESIS
    entry.entry_hash = entry_digest(entry.prev_hash, entry)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `korgwatch review verify-log` prints: intact, or the first entry from which the chain is broken."""

    entries: int
    broken_at: int | None = None  # the id of the first entry that does not follow from the ones before
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def _entries(session: Session, batch: int = 1000) -> Iterator[ReviewLog]:
    last_id = 0
    while True:
        rows = session.scalars(
            select(ReviewLog).where(ReviewLog.id > last_id).order_by(ReviewLog.id).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        session.expunge_all()


def verify_chain(session: Session) -> ChainReport:
    """Walk the log oldest first and recompute every hash; stop at the first entry that does not follow."""
    expected_prev = GENESIS
    count = 0
    for entry in _entries(session):
        count += 1
        if entry.prev_hash != expected_prev:
            what = "the entry before it is missing or was changed" if count > 1 else "it is not the first entry"
            return ChainReport(count, entry.id, f"entry {entry.id} does not follow the one before it ({what})")
        if entry.entry_hash != entry_digest(entry.prev_hash or "", entry):
            return ChainReport(count, entry.id, f"entry {entry.id} was changed after it was written")
        expected_prev = entry.entry_hash
    return ChainReport(count)
