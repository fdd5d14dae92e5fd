"""Distributed mode: a due job hands its run to the `korgwatch worker`s instead of crawling it.

The job calls `crawler.distributed.enqueue.enqueue_runs`, which opens a `crawl_runs` row (outcome NULL) and
pushes the run's start message to Redis; the workers crawl the run and close it, so the job ends at once.
Like runner.py, it makes sure every run ends up recorded: a run it could not hand over (Redis down) is
recorded `failed` with the Redis error in `log_tail`, so `korgwatch runs` and `korgwatch status` show the outage.
One run per source at a time, as in single-process mode: while the source's previous run is still open and
younger than its `time_limit`, a trigger is skipped rather than piling a second run onto the workers' queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine

from db.engine import session_scope
from korgwatch.scheduling import history
from korgwatch.scheduling.config import ScheduleConfig, format_duration, redact_url
from korgwatch.scheduling.runner import StoreEngine

logger = logging.getLogger("korgwatch.scheduler")

WAIT_STEP = 0.1  # seconds between checks for an enqueue still in progress


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """How one due run went: `enqueued` (the workers have it), `skipped` (the previous run is still open) or
    `failed` (Redis refused it; `crawl_run_id` is the run recorded `failed`)."""

    source: str
    status: str
    crawl_run_id: int | None
    reason: str


@dataclass
class RunEnqueuer(StoreEngine):
    """The distributed counterpart of CrawlRunner: same `run(source)`, `stop()`, `wait_idle()`, `close()`.

    `base_url_for(source)` moves a source elsewhere (the sample site): it travels in the start message.
    """

    config: ScheduleConfig
    db_url: str
    redis_url: str
    base_url_for: Callable[[str], str | None] = lambda _source: None
    results: list[EnqueueResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._stopping = False
        self._engine: Engine | None = None

    def stop(self, *, force: bool = False) -> None:
        """Enqueue no more runs; runs already enqueued are the workers' and go on (`force` changes nothing)."""
        with self._lock:
            self._stopping = True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no enqueue is in progress (at most Redis's timeout); False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._busy:
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_STEP)

    def run(self, source: str) -> EnqueueResult | None:
        """Enqueue one run of `source`; None if not attempted (stopping, not in schedule.yaml, or in progress)."""
        job = self.config.job(source)
        if job is None:
            logger.error("enqueue %s: not in %s; remove the job or add the source", source, self.config.path)
            return None
        with self._lock:
            if self._stopping:
                logger.info("enqueue %s not done: the scheduler is stopping", source)
                return None
            if source in self._busy:
                return None
            self._busy.add(source)
        try:
            result = self._enqueue(source, job.time_limit)
        finally:
            with self._lock:
                self._busy.discard(source)
        self.results.append(result)
        return result

    def _enqueue(self, source: str, time_limit: float) -> EnqueueResult:
        from crawler.distributed.enqueue import enqueue_runs

        started_at = datetime.now(UTC)
        with session_scope(self.engine) as session:
            before = history.last_run_id(session, source)
            still_open = history.newest_open_run(session, source)
        if still_open is not None:
            run_id, opened = still_open
            age = (started_at - opened).total_seconds()
            if age < time_limit:
                reason = f"run {run_id} is still open (enqueued {format_duration(max(age, 0))} ago)"
                logger.info("enqueue %s skipped: %s", source, reason)
                return EnqueueResult(source, "skipped", run_id, reason)
            logger.warning(
                "enqueue %s: run %d has been open for %s, over its time_limit (workers gone?); enqueuing anew",
                source,
                run_id,
                format_duration(age),
            )
        base_url = self.base_url_for(source)
        try:
            (run,) = enqueue_runs(
                self.redis_url, self.db_url, [source], base_urls={source: base_url} if base_url else None
            )
        except redis.RedisError as exc:
            return self._record_failure(source, before, started_at, exc)
        where = f" (base {base_url})" if base_url else ""
        logger.info("run %d of %s enqueued for the workers%s", run.run, source, where)
        return EnqueueResult(source, "enqueued", run.run, "enqueued for the workers")

    def _record_failure(self, source: str, before: int, started_at: datetime, exc: redis.RedisError) -> EnqueueResult:
        """Record the run Redis refused, unless enqueue_runs already closed the one it had opened."""
        reason = f"enqueue failed: Redis unreachable at {redact_url(self.redis_url)}: {type(exc).__name__}: {exc}"
        with session_scope(self.engine) as session:
            closed = [row for row in history.runs_since(session, source, before) if row.outcome == "failed"]
            if closed:
                run_id = closed[-1].id
            else:  # the usual case: enqueue_runs pings Redis before it opens a run
                run_id = history.record_run(
                    session,
                    source,
                    started_at=started_at,
                    finished_at=datetime.now(UTC),
                    outcome="failed",
                    log_tail=f"SCHEDULER {reason}",
                )
        logger.error("enqueue %s failed: %s (run %d recorded failed)", source, reason, run_id)
        return EnqueueResult(source, "failed", run_id, reason)
