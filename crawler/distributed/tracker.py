"""The worker's ledger: what it fetched and stored for each run, written to the store every few seconds.

A Scrapy extension, on only in worker mode (`KORGWATCH_DISTRIBUTED`). It counts responses per run (the
`korgwatch_run` meta), the ingest results the pipeline reports per run, and failed requests; a LoopingCall
adds them to `crawl_runs` and `crawl_run_workers` in a thread (db.run_ledger), keeping them for the next
tick if the store is unreachable. When a worker finds its source's queues empty and no live worker busy, the
source's started runs are closed (their outcome set) and leave Redis's `started` set; a run that lost a dead
worker's requests counts an error, so it closes `degraded`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import defaultdict
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from redis.exceptions import RedisError
from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet import task, threads
from twisted.internet.defer import Deferred

from crawler.distributed.keys import RUN_META, started_key
from db.ingest import short_error
from db.run_ledger import RunCounts, add_counts, close_lost_runs, close_runs, mark_incomplete

logger = logging.getLogger(__name__)

request_failed = object()  # signal(run): a request of `run` failed for good
ingest_stored = object()  # signal(run, summary): the pipeline stored a batch of `run`
DEFAULT_INTERVAL = 2.0


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RunTracker:
    """Counts per run on this worker, flushed to the store; closes runs when the shared queue is dry."""

    def __init__(self, crawler: Any, worker: str, db_url: str, interval: float, redis: Any) -> None:
        self.crawler = crawler
        self.redis = redis
        self.worker = worker
        self.db_url = db_url
        self.interval = interval
        self.pending: defaultdict[int, RunCounts] = defaultdict(RunCounts)
        self.to_close: set[int] = set()
        self.incomplete: set[int] = set()  # runs that lost a dead worker's requests: marked in the store
        self.writing: Deferred[None] | None = None
        self.source = ""
        # Runs open longer than this when the source's crawl is over everywhere were lost; looked for this often.
        self.lost_after = crawler.settings.getfloat("KORGWATCH_PEER_TIMEOUT", 60.0)
        self.last_sweep = 0.0
        self.sweep_due = False
        self.loop: task.LoopingCall | None = None
        self.engine: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        settings = crawler.settings
        if not settings.getbool("KORGWATCH_DISTRIBUTED"):
            raise NotConfigured("only distributed workers keep a run ledger")
        from scrapy_redis.connection import get_redis_from_settings

        from crawler.distributed.worker import peer_lost, queue_drained

        tracker = cls(
            crawler,
            settings.get("KORGWATCH_WORKER_NAME") or default_worker_name(),
            settings.get("KORGWATCH_DB_URL"),
            settings.getfloat("KORGWATCH_RUN_FLUSH_INTERVAL", DEFAULT_INTERVAL),
            get_redis_from_settings(settings),
        )
        connect = crawler.signals.connect
        connect(tracker.spider_opened, signal=signals.spider_opened)
        connect(tracker.spider_closed, signal=signals.spider_closed)
        connect(tracker.response_received, signal=signals.response_received)
        connect(tracker.stored, signal=ingest_stored)
        connect(tracker.failed, signal=request_failed)
        connect(tracker.drained, signal=queue_drained)
        connect(tracker.lost, signal=peer_lost)
        return tracker

    # -- counting (reactor thread) -----------------------------------------------------------------------
    def response_received(self, response: Response, request: Request, **_: Any) -> None:
        run = request.meta.get(RUN_META)
        if run is not None:
            self.pending[run].pages += 1

    def stored(self, run: int | None, summary: Any, **_: Any) -> None:
        """A batch of `run` was stored: its listing counts went in with it (IngestPipeline); its errors here."""
        if run is not None and summary.errors:
            self.pending[run].errors += len(summary.errors)

    def failed(self, run: int | None, **_: Any) -> None:
        if run is not None:
            self.pending[run].errors += 1

    def lost(self, source: str, worker: str, runs: list[int], **_: Any) -> None:
        """A dead worker's in-flight requests are lost to the runs under way: one error each."""
        for run in runs:
            self.pending[run].errors += 1
        self.incomplete |= set(runs)

    def drained(self, source: str, runs: list[int], **_: Any) -> None:
        """The source's crawl is over everywhere: close its started runs, and (now and then) its lost ones."""
        self.to_close |= set(runs)
        if time.monotonic() - self.last_sweep >= self.lost_after:
            self.sweep_due = True
        if self.to_close or self.sweep_due:
            self.flush()

    # -- writing (a thread; one write at a time) ---------------------------------------------------------
    def spider_opened(self, **_: Any) -> None:
        from db.engine import make_engine

        self.source = self.crawler.spider.name
        self.engine = make_engine(self.db_url)
        self.loop = task.LoopingCall(self.flush)
        self.loop.start(self.interval, now=False)

    def flush(self) -> Deferred[None] | None:
        if self.writing or not (self.pending or self.to_close or self.sweep_due or self.incomplete):
            return None
        counts = {run: c for run, c in self.pending.items() if c}
        closing = set(self.to_close)
        incomplete = set(self.incomplete)
        sweep = self.sweep_due
        self.pending = defaultdict(RunCounts)
        self.to_close = set()
        self.incomplete = set()
        self.sweep_due = False
        if sweep:
            self.last_sweep = time.monotonic()
        d: Deferred[None] = threads.deferToThread(self._write, counts, closing, sweep, incomplete)
        self.writing = d

        def failed(failure: Any) -> None:  # keep everything for the next tick
            for run, c in counts.items():
                self.pending[run].add(c)
            self.to_close |= closing
            self.incomplete |= incomplete
            self.sweep_due = self.sweep_due or sweep
            logger.warning("run ledger not written (%s); retrying in %.0f s", failure.getErrorMessage(), self.interval)

        def done(result: Any) -> None:
            self.writing = None

        d.addErrback(failed)
        d.addBoth(done)
        return d

    def _write(
        self,
        counts: dict[int, RunCounts],
        closing: set[int],
        sweep: bool = False,
        incomplete: frozenset[int] | set[int] = frozenset(),
    ) -> None:
        from db.engine import session_scope

        now = datetime.now(UTC)
        lost: list[int] = []
        try:
            with session_scope(self.engine) as session:
                unknown = add_counts(session, self.worker, counts, now) if counts else []
                mark_incomplete(session, incomplete)  # before closing: the next run of the source pages in full
                closed = close_runs(session, closing, now)
                if sweep:
                    opened_before = now - timedelta(seconds=self.lost_after)
                    lost = close_lost_runs(session, self.source, opened_before, now)
        except SQLAlchemyError as exc:
            raise RuntimeError(short_error(exc)) from exc
        if unknown:
            logger.error("runs %s are not in this store (another database?): their counts are dropped", unknown)
        if closing:  # closed in the store: no longer under way (if Redis fails here, the next drain retries)
            with suppress(RedisError):
                self.redis.srem(started_key(self.source), *closing)
        for run in closed:
            logger.info("run %d closed: its source's queue is empty", run)
        for run in lost:
            logger.warning("run %d of %s closed: no worker ever took it (its start message was lost)", run, self.source)

    async def spider_closed(self, **_: Any) -> None:
        """The last counts: after the write in flight (if any), one more; stopping does not close runs."""
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.to_close = set()  # other workers may carry the runs on
        if self.writing is not None:
            await maybe_deferred_to_future(self.writing)
        final = self.flush()
        if final is not None:
            await maybe_deferred_to_future(final)
        if self.engine is not None:
            self.engine.dispose()
