"""Dead letters: listings the store refused after every retry, kept as JSON Lines to replay, never dropped.

One file per source and day under `<data dir>/dead-letter/` (or KORGWATCH_DEAD_LETTER_DIR): each line is
`{"record": <the listing, as korgwatch ingest reads it>, "error": ..., "failed_at": ..., "attempts": n}`.
`korgwatch dead-letter replay` stores them once the database is back (`replay_file`): the records the store
takes are stored, and the file keeps only those it still refuses, each with its new reason.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.pages.records import ListingRecord

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from db.ingest import IngestSummary
    from pipeline.rules import Rules

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
        )  # ASCII: a lone surrogate from a JSON API must not make the letter unwritable
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


@dataclass
class ReplayResult:
    """What replaying one file did: the stored records' summary, and the lines kept in the file with why."""

    path: Path
    letters: int = 0
    summary: IngestSummary | None = None
    kept: list[str] = field(default_factory=list)  # "file:line: reason" per letter still refused
    problems: list[str] = field(default_factory=list)  # lines that are not dead letters (kept as they are)
    replayed_to: Path | None = None  # where the file went when nothing was left in it


def replay_file(
    path: Path, engine: Engine, rules: Rules, progress: Callable[[int, int, int], None] | None = None
) -> ReplayResult:
    """Store one file's letters, isolating the ones the store refuses; the file then keeps only those (and any
    line that is not a letter), or, when nothing is left, is renamed `*.replayed`."""
    from db.ingest import IngestSummary, ingest_stored, store_isolating
    from db.records import RecordError, normalise_record

    result = ReplayResult(path, summary=IngestSummary())
    letters = list(read_dead_letters(path, result.problems))
    result.letters = len(letters)
    keep: dict[int, str] = {}  # line number: the reason it stays
    good = []
    for letter in letters:
        try:
            good.append((letter, normalise_record(letter.record)))
        except RecordError as exc:
            keep[letter.line] = str(exc)
    stored = store_isolating(
        engine, good, lambda session, part: ingest_stored(session, [(f"line {x.line}", r) for x, r in part], rules)
    )
    result.summary = stored.summary
    for (letter, _), reason in stored.refused:
        keep[letter.line] = f"database error (refused): {reason}"
    for letter, _ in stored.unstored:
        keep[letter.line] = f"database error: {stored.unavailable}"
    if progress is not None:
        progress(len(letters), stored.summary.listings_stored, len(keep) + len(result.problems))
    by_line = {letter.line: letter for letter in letters}
    result.kept = [f"{path}:{number}: {reason}" for number, reason in sorted(keep.items())]
    if not keep and not result.problems:
        result.replayed_to = path.with_name(path.name + REPLAYED_SUFFIX)
        path.rename(result.replayed_to)
        return result
    _keep_only(path, {n: (by_line[n], reason) for n, reason in keep.items()}, set(by_line))
    return result


def _keep_only(path: Path, refused: dict[int, tuple[DeadLetter, str]], letter_lines: set[int]) -> None:
    """Rewrite the file (atomically, fsynced) with the refused letters and every line that is not a letter."""
    now = datetime.now(UTC).isoformat()
    out_lines = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if number in refused:
                letter, reason = refused[number]
                out_lines.append(
                    json.dumps({"record": letter.record, "error": reason, "failed_at": now})
                    + "\n"
                )
            elif number not in letter_lines and line.strip():
                out_lines.append(line if line.endswith("\n") else line + "\n")
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        out.writelines(out_lines)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
