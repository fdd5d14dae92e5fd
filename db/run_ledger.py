"""Distributed runs in the store: `korgwatch enqueue` opens them, workers add their counts, the last one closes.

Every write is a single `x = x + n` UPDATE or an INSERT … ON CONFLICT DO UPDATE that adds, so any number of
workers may report for one run at the same moment without a lost update (the database serialises them on the
row). A run is open while its outcome is NULL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
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


def open_run(session: Session, source: str, now: datetime) -> int:
    """A new running (outcome NULL) run of `source`; its id is what the start message carries."""
    source_id = ensure_sources(session, [source])[source]
    row = CrawlRun(source_id=source_id, started_at=now, listings_unchanged=0)
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
        .where(Source.name == source, CrawlRun.outcome.is_(None), CrawlRun.started_at < opened_before)
    ).all()
    return close_runs(session, lost, now, LOST_RUN_NOTE)
