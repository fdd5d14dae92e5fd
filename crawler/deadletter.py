"""Dead letters: listings the store refused after every retry, kept as JSON Lines to replay, never dropped.

One file per source and day under `<data dir>/dead-letter/` (or KORGWATCH_DEAD_LETTER_DIR): each line is
`{"record": <the listing, as korgwatch ingest reads it>, "error": ..., "failed_at": ..., "attempts": n}`.
`korgwatch dead-letter replay` stores them once the database is back.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.pages.records import ListingRecord

REPLAYED_SUFFIX = ".replayed"


def dead_letter_dir(configured: str | Path | None = None) -> Path:
    if configured:
        return Path(configured)
    if os.environ.get("KORGWATCH_DEAD_LETTER_DIR"):
        return Path(os.environ["KORGWATCH_DEAD_LETTER_DIR"])
    from korgwatch.paths import data_dir

    return data_dir() / "dead-letter"


def write_dead_letters(
    directory: Path, records: Sequence[ListingRecord], error: str, attempts: int, now: datetime | None = None
) -> Path:
    """Append the records to their source's file of the day (fsynced: the store is down, this is all we have).

    Raises DeadLetterUnwritable when they cannot be written whole (a full disk): nothing of them is left in the
    file, and the caller must fail its run (the listings are neither stored nor kept).
    """
    now = now or datetime.now(UTC)
    try:
        return _append(directory, records, error, attempts, now)
    except OSError as exc:
        raise DeadLetterUnwritable(
            f"{len(records)} listings lost: the store refused them ({error}) and the dead letter could not be "
            f"written in {directory}: {exc.strerror or exc}"
        ) from exc


class DeadLetterUnwritable(OSError):
    """Listings the store refused could not be written as dead letters either: they are lost, say so."""


def _append(directory: Path, records: Sequence[ListingRecord], error: str, attempts: int, now: datetime) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    source = records[0].source if records else "unknown"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in source) or "unknown"
    path = directory / f"{safe}-{now:%Y%m%d}.jsonl"
    lines = [
        json.dumps(
            {"record": r.to_dict(), "error": error, "failed_at": now.isoformat(), "attempts": attempts},
            ensure_ascii=False,
        )
        for r in records
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            # A full disk: take back the part written, so the file's earlier letters stay whole and a later
            # append does not start mid-line; the caller reports the loss.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
    return path


@dataclass(frozen=True, slots=True)
class DeadLetter:
    path: Path
    line: int
    record: dict[str, Any]
    error: str
    failed_at: str


def read_dead_letters(path: Path, problems: list[str]) -> Iterator[DeadLetter]:
    """The letters of one file; a line that is not one is named (file:line) in `problems` and skipped."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                record = data["record"]
                if not isinstance(record, dict):
                    raise TypeError("record is not an object")
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path}:{number}: not a dead letter ({exc})")
                continue
            yield DeadLetter(path, number, record, str(data.get("error", "")), str(data.get("failed_at", "")))


def pending_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.jsonl")) if directory.is_dir() else []
