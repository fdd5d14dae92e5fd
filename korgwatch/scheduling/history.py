"""Run history and source health: queries over `crawl_runs` and `flags`, each taking the caller's session.

A crawl writes its own `crawl_runs` row when it completes; the scheduler writes one only for a crawl that
could not (timed out, crashed, killed). Health treats the runs as data, as Spidermon does: three failures in a
row, or a run that saw far fewer listings than the source usually shows, make a source unhealthy.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CrawlRun, CrawlRunWorker, Flag, Listing, Source

FAILED_OUTCOMES = ("failed", "timed_out", "interrupted")
FAILURES_IN_A_ROW = 3
LOW_YIELD_RATIO = 0.25  # a run seeing under a quarter of the usual listings: the site's layout changed?
LOW_YIELD_MIN_HISTORY = 3  # previous ok runs needed before "usual" means anything
LOW_YIELD_MIN_MEDIAN = 4  # below this the usual count is too small to judge
HISTORY_WINDOW = 10


@dataclass(frozen=True, slots=True)
class RunRow:
    """One crawl run as `korgwatch runs` shows it."""

    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    pages: int
    listings_new: int
    listings_updated: int
    listings_unchanged: int | None
    flags_raised: int
    errors: int
    log_tail: str | None
    #: A distributed run's workers: (name, pages fetched), by name; empty for a single-process crawl.
    workers: tuple[tuple[str, int], ...] = ()

    @property
    def listings_seen(self) -> int:
        """Every listing the run read, new or not: the measure of whether the extractors still work."""
        return self.listings_new + self.listings_updated + (self.listings_unchanged or 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "outcome": self.outcome,
            "pages": self.pages,
            "listings_new": self.listings_new,
            "listings_updated": self.listings_updated,
            "listings_unchanged": self.listings_unchanged,
            "listings_seen": self.listings_seen,
            "flags_raised": self.flags_raised,
            "errors": self.errors,
            "log_tail": self.log_tail,
            "workers": [{"worker": name, "pages": pages} for name, pages in self.workers],
        }


@dataclass(frozen=True, slots=True)
class Health:
    """`state` is healthy, warning, unhealthy or unknown; `reasons` say why in a reviewer's words."""

    state: str
    reasons: tuple[str, ...] = ()


def _row(run: CrawlRun, source: str, workers: tuple[tuple[str, int], ...] = ()) -> RunRow:
    return RunRow(
        id=run.id,
        source=source,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=run.outcome,
        pages=run.pages,
        listings_new=run.listings_new,
        listings_updated=run.listings_updated,
        listings_unchanged=run.listings_unchanged,
        flags_raised=run.flags_raised,
        errors=run.errors,
        log_tail=run.log_tail,
        workers=workers,
    )


def recent_runs(session: Session, source: str | None = None, limit: int = 20) -> list[RunRow]:
    """The newest runs first, of one source or all."""
    statement = select(CrawlRun, Source.name).join(Source, CrawlRun.source_id == Source.id)
    if source is not None:
        statement = statement.where(Source.name == source)
    statement = statement.order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc()).limit(limit)
    found = session.execute(statement).all()
    workers: dict[int, list[tuple[str, int]]] = {}
    ids = [run.id for run, _ in found]
    if ids:
        for run_id, worker, pages in session.execute(
            select(CrawlRunWorker.crawl_run_id, CrawlRunWorker.worker, CrawlRunWorker.pages)
            .where(CrawlRunWorker.crawl_run_id.in_(ids))
            .order_by(CrawlRunWorker.crawl_run_id, CrawlRunWorker.worker)
        ):
            workers.setdefault(run_id, []).append((worker, pages))
    return [_row(run, name, tuple(workers.get(run.id, ()))) for run, name in found]


def last_run_id(session: Session, source: str) -> int:
    """The newest `crawl_runs.id` of a source (0 if none): rows above it were written after this call."""
    statement = select(func.max(CrawlRun.id)).join(Source, CrawlRun.source_id == Source.id)
    return int(session.execute(statement.where(Source.name == source)).scalar() or 0)


def runs_since(session: Session, source: str, after_id: int) -> list[CrawlRun]:
    """The source's rows written after `last_run_id()` returned `after_id`."""
    statement = (
        select(CrawlRun)
        .join(Source, CrawlRun.source_id == Source.id)
        .where(Source.name == source, CrawlRun.id > after_id)
        .order_by(CrawlRun.id)
    )
    return list(session.execute(statement).scalars())


def newest_open_run(session: Session, source: str) -> tuple[int, datetime] | None:
    """The id and start of the source's newest run still open (outcome NULL: enqueued, workers on it), if any."""
    statement = (
        select(CrawlRun.id, CrawlRun.started_at)
        .join(Source, CrawlRun.source_id == Source.id)
        .where(Source.name == source, CrawlRun.outcome.is_(None))
        .order_by(CrawlRun.id.desc())
        .limit(1)
    )
    found = session.execute(statement).first()
    return (found[0], found[1]) if found else None


def record_run(
    session: Session,
    source: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    log_tail: str,
) -> int:
    """Write the row of a run the crawl itself could not record (the scheduler's side of the contract)."""
    from db.ingest import ensure_sources

    source_id = ensure_sources(session, [source])[source]
    row = CrawlRun(
        source_id=source_id,
        started_at=started_at,
        finished_at=finished_at,
        outcome=outcome,
        errors=1,
        log_tail=log_tail or None,
    )
    session.add(row)
    session.flush()
    return row.id


def close_run(session: Session, run_id: int, *, outcome: str, log_tail: str) -> int:
    """Close a run the crawl opened at its start but could not finish; it lost work, so the next pages in full."""
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise LookupError(f"crawl run {run_id} is not in the store")
    if run.outcome is None:
        run.outcome = outcome
        run.finished_at = datetime.now(UTC)
        run.errors += 1
        run.incomplete = True
        run.log_tail = "\n".join(part for part in (run.log_tail, log_tail) if part) or None
    return run.id


def set_listings_unchanged(session: Session, run_id: int, count: int) -> None:
    """Complete a crawl's own row with the listings it saw unchanged (crawls that predate the column omit it)."""
    run = session.get(CrawlRun, run_id)
    if run is not None and run.listings_unchanged is None:
        run.listings_unchanged = count


def open_flags_by_source(session: Session) -> dict[str, int]:
    """The review queue's size per source: flags still open on that source's listings."""
    statement = (
        select(Source.name, func.count(Flag.id))
        .join(Listing, Flag.listing_id == Listing.id)
        .join(Source, Listing.source_id == Source.id)
        .where(Flag.status == "open")
        .group_by(Source.name)
    )
    return {name: int(count) for name, count in session.execute(statement).all()}


def health(runs: Sequence[RunRow]) -> Health:
    """Judge a source from its runs, newest first."""
    if not runs:
        return Health("unknown", ("no runs yet",))
    last = runs[0]
    streak = runs[:FAILURES_IN_A_ROW]
    if len(streak) == FAILURES_IN_A_ROW and all(r.outcome in FAILED_OUTCOMES for r in streak):
        return Health("unhealthy", (f"the last {FAILURES_IN_A_ROW} runs failed or timed out",))
    reasons: list[str] = []
    previous_ok = [r.listings_seen for r in runs[1 : 1 + HISTORY_WINDOW] if r.outcome == "ok"]
    if last.outcome not in FAILED_OUTCOMES and len(previous_ok) >= LOW_YIELD_MIN_HISTORY:
        usual = statistics.median(previous_ok)
        if usual >= LOW_YIELD_MIN_MEDIAN and last.listings_seen < LOW_YIELD_RATIO * usual:
            reasons.append(
                f"last run saw {last.listings_seen} listings, under {LOW_YIELD_RATIO:.0%} of the usual "
                f"{usual:g} (median of {len(previous_ok)} ok runs): the site's layout changed?"
            )
            return Health("unhealthy", tuple(reasons))
    if last.outcome != "ok":
        return Health("warning", (f"last run {last.outcome or 'unfinished'}",))
    return Health("healthy")


def source_names(session: Session) -> list[str]:
    """Every source the store knows (it has runs or listings)."""
    return list(session.execute(select(Source.name).order_by(Source.name)).scalars())
