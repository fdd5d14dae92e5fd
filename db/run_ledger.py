"""Distributed runs in the store: `korgwatch enqueue` opens them, workers add their counts, the last one closes.

Every write is a single `x = x + n` UPDATE or an INSERT … ON CONFLICT DO UPDATE that adds, so any number of
workers may report for one run at the same moment without a lost update (the database serialises them on the
row). A run is open while its outcome is NULL.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.ingest import ensure_sources
from db.models import CrawlRun, CrawlRunWorker, Source

COUNTED = ("pages", "listings_new", "listings_updated", "listings_unchanged", "flags_raised", "errors")


@dataclass
class RunCounts:
    """One worker's not-yet-written counts for one run."""

    pages: int = 0
    listings_new: int = 0
    listings_updated: int = 0
    listings_unchanged: int = 0
    flags_raised: int = 0
    errors: int = 0

    def add(self, other: RunCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def open_run(session: Session, source: str, now: datetime, *, full: bool = False) -> int:
    """A new running (outcome NULL) run of `source`; its id is what the start message carries."""
    source_id = ensure_sources(session, [source])[source]
    row = CrawlRun(source_id=source_id, started_at=now, listings_unchanged=0, paged_in_full=full)
    session.add(row)
    session.flush()
    return row.id


def add_counts(session: Session, worker: str, counts: Mapping[int, RunCounts], now: datetime) -> list[int]:
    """Add a worker's counts to its rows and to the runs' totals; returns run ids the store does not know."""
    runs = sorted(counts)
    known = set(session.scalars(select(CrawlRun.id).where(CrawlRun.id.in_(runs))))
    table = cast(Table, CrawlRunWorker.__table__)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for run in runs:
        if run not in known:
            continue
        values = {name: getattr(counts[run], name) for name in COUNTED}
        stmt = insert(table).values(crawl_run_id=run, worker=worker, first_at=now, last_at=now, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["crawl_run_id", "worker"],
            set_={"last_at": stmt.excluded.last_at, **{n: table.c[n] + stmt.excluded[n] for n in COUNTED}},
        )
        session.execute(stmt)
        totals = {n: getattr(CrawlRun, n) + values[n] for n in COUNTED if n != "listings_unchanged"}
        unchanged = case((CrawlRun.listings_unchanged.is_(None), 0), else_=CrawlRun.listings_unchanged)
        session.execute(
            update(CrawlRun)
            .where(CrawlRun.id == run)
            .values(
                listings_unchanged=unchanged + values["listings_unchanged"],
                # a run already closed by another worker stays closed; its end moves to the last report
                finished_at=case((CrawlRun.outcome.is_not(None), now), else_=CrawlRun.finished_at),
                **totals,
            )
        )
    return [run for run in runs if run not in known]


LOST_RUN_NOTE = (
    "closed when its source's queues were found empty with no worker busy, though no worker had taken it: "
    "its start message was lost (Redis restarted without its data?)"
)


def close_runs(session: Session, runs: Iterable[int], now: datetime, note: str | None = None) -> list[int]:
    """Give the still-open `runs` their outcome (failed: no page; degraded: errors; else ok); ids closed."""
    ids = sorted(set(runs))
    if not ids:
        return []
    closing = list(session.scalars(select(CrawlRun.id).where(CrawlRun.id.in_(ids), CrawlRun.outcome.is_(None))))
    if closing:
        outcome = case((CrawlRun.pages == 0, "failed"), (CrawlRun.errors > 0, "degraded"), else_="ok")
        values: dict[str, Any] = {"outcome": outcome, "finished_at": now}
        if note is not None:
            values["log_tail"] = note
        session.execute(
            update(CrawlRun)
            .where(CrawlRun.id.in_(closing), CrawlRun.outcome.is_(None))  # another worker may have closed it
            .values(**values)
        )
    return closing


def close_lost_runs(session: Session, source: str, opened_before: datetime, now: datetime) -> list[int]:
    """Close `source`'s runs still open from before `opened_before`, called when its crawl is over everywhere.

    At that moment no run of the source can still be under way; one still open was never taken by a worker
    (the started runs close first). `opened_before` leaves alone a run `korgwatch enqueue` is opening right now.
    """
    lost = session.scalars(
        select(CrawlRun.id)
        .join(Source, Source.id == CrawlRun.source_id)
        .where(
            Source.name == source,
            CrawlRun.outcome.is_(None),
            CrawlRun.owner.is_(None),  # a local crawl's run is its own process's to close
            CrawlRun.started_at < opened_before,
        )
    ).all()
    return close_runs(session, lost, now, LOST_RUN_NOTE)


# --- local crawls: recorded at their start, closed `interrupted` when found open with their process gone ------

INTERRUPTED_NOTE = "INTERRUPTED: its process ({owner}) was gone when the next crawl of the source started"
#: A run opened by a process on another host cannot be checked; after this long it no longer holds the lease.
FOREIGN_LEASE_HOURS = 24


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc): with the pid, unique over a boot.

    "" for a zombie (dead, not yet reaped by its parent), None when /proc cannot say.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return ""
    except OSError:
        return None
    fields_after_name = stat.rpartition(")")[2].split()
    if not fields_after_name or fields_after_name[0] in ("Z", "X"):
        return ""
    return fields_after_name[19] if len(fields_after_name) > 19 else None


def process_owner(pid: int | None = None) -> str:
    """`host:pid:start-ticks` of this (or another local) process: a pid reused later does not match it."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '0'}"  # '0': no /proc, the pid alone


def owner_alive(owner: str | None) -> bool | None:
    """Whether the process named by `owner` still runs; None when it is on another host (cannot tell)."""
    if owner is None:
        return False  # a distributed run: no process of ours holds it
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False  # not one of ours: nothing can be waiting on it
    host, pid_text, ticks = parts
    if host != socket.gethostname():
        return None
    pid = int(pid_text)
    current = _start_ticks(pid)
    if current == "":
        return False
    if current is not None:
        return ticks in ("0", current)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SourceBusy(Exception):
    """Another live process holds the source's lease (its open run)."""

    def __init__(self, source: str, run_id: int, owner: str) -> None:
        super().__init__(f"{source}: a crawl is already running (run {run_id}, process {owner}); not started")
        self.source = source
        self.run_id = run_id
        self.owner = owner


@dataclass(frozen=True, slots=True)
class LocalRun:
    """A local crawl's open row; `recovering` is the incomplete run whose loss this run pages in full to cover."""

    id: int
    full: bool
    recovering: int | None
    interrupted: tuple[int, ...]


def _lock_source(session: Session, source: str) -> int:
    """The source's id, its row locked until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises)."""
    source_id = ensure_sources(session, [source])[source]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Source.id).where(Source.id == source_id).with_for_update())
    return source_id


def close_interrupted_runs(session: Session, source: str, now: datetime) -> list[int]:
    """Close `source`'s local runs left open by a process that is gone: `interrupted`, incomplete."""
    rows = session.execute(
        select(CrawlRun.id, CrawlRun.owner, CrawlRun.log_tail)
        .join(Source, Source.id == CrawlRun.source_id)
        .where(Source.name == source, CrawlRun.outcome.is_(None), CrawlRun.owner.is_not(None))
    ).all()
    closed = []
    for run_id, owner, tail in rows:
        if owner_alive(owner) is False:
            note = INTERRUPTED_NOTE.format(owner=owner)
            session.execute(
                update(CrawlRun)
                .where(CrawlRun.id == run_id, CrawlRun.outcome.is_(None))
                .values(
                    outcome="interrupted",
                    incomplete=True,
                    errors=CrawlRun.errors + 1,
                    finished_at=now,
                    log_tail=f"{tail}\n{note}" if tail else note,
                )
            )
            closed.append(run_id)
    return closed


def needs_recovery(session: Session, source: str) -> int | None:
    """The newest run of `source` that lost work and that no later complete run paging in full has covered."""
    covered = (
        select(CrawlRun.started_at)
        .join(Source, Source.id == CrawlRun.source_id)
        .where(
            Source.name == source,
            CrawlRun.paged_in_full.is_(True),
            CrawlRun.incomplete.is_(False),
            CrawlRun.outcome.in_(("ok", "degraded")),
        )
        .order_by(CrawlRun.started_at.desc())
        .limit(1)
    )
    last_cover = session.scalar(covered)
    lost = (
        select(CrawlRun.id)
        .join(Source, Source.id == CrawlRun.source_id)
        .where(Source.name == source, CrawlRun.incomplete.is_(True))
        .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
        .limit(1)
    )
    if last_cover is not None:
        lost = lost.where(CrawlRun.started_at >= last_cover)
    return session.scalar(lost)


def begin_local_run(session: Session, source: str, now: datetime, *, full: bool, owner: str | None = None) -> LocalRun:
    """Open this process's run of `source` (the source's lease), after closing runs whose process is gone.

    Raises SourceBusy when a live process (or one on another host, for FOREIGN_LEASE_HOURS) holds an open run.
    A source whose last runs lost work gets a run paging in full.
    """
    source_id = _lock_source(session, source)
    interrupted = close_interrupted_runs(session, source, now)
    for run_id, holder, started in session.execute(
        select(CrawlRun.id, CrawlRun.owner, CrawlRun.started_at).where(
            CrawlRun.source_id == source_id, CrawlRun.outcome.is_(None), CrawlRun.owner.is_not(None)
        )
    ):
        alive = owner_alive(holder)
        started = started if started.tzinfo else started.replace(tzinfo=now.tzinfo)
        if alive or (alive is None and now - started < timedelta(hours=FOREIGN_LEASE_HOURS)):
            raise SourceBusy(source, run_id, holder or "")
    recovering = None if full else needs_recovery(session, source)
    row = CrawlRun(
        source_id=source_id,
        started_at=now,
        owner=owner or process_owner(),
        paged_in_full=full or recovering is not None,
    )
    session.add(row)
    session.flush()
    return LocalRun(row.id, row.paged_in_full, recovering, tuple(interrupted))


def running_local_run(session: Session, source: str) -> tuple[int, str] | None:
    """The open run of `source` whose process still runs (id, owner), if any: the lease's holder."""
    for run_id, holder in session.execute(
        select(CrawlRun.id, CrawlRun.owner)
        .join(Source, Source.id == CrawlRun.source_id)
        .where(Source.name == source, CrawlRun.outcome.is_(None), CrawlRun.owner.is_not(None))
    ):
        if holder is not None and owner_alive(holder) is not False:
            return run_id, holder
    return None


def mark_incomplete(session: Session, runs: Iterable[int]) -> None:
    """The runs lost work (a dead worker's requests): the source's next run pages in full."""
    ids = sorted(set(runs))
    if ids:
        session.execute(update(CrawlRun).where(CrawlRun.id.in_(ids)).values(incomplete=True))
