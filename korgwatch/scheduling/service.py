"""The running scheduler behind `korgwatch schedule run` and `python scheduler.py`.

Start: migrate the database, start the sample site if asked, apply schedule.yaml to the job store, then run
jobs. Every `poll` seconds it wakes up to re-read the job store, so the CLI's pause/resume/run-now take effect.
Stop (SIGTERM or SIGINT): start no new crawl, let running crawls finish within their grace period, then kill
them and record them; a second signal kills them at once. It exits only when no crawl process is left.
With `distributed: true` a due job enqueues a run for the workers (enqueuer.py) instead of crawling it; the
job store, triggers and CLI are the same, and there is still exactly one scheduler per database.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from sqlalchemy import Engine

from db.engine import make_engine
from korgwatch.notify.background import BackgroundNotifier
from korgwatch.scheduling import jobs, runner
from korgwatch.scheduling.children import clean_stale_work_dirs
from korgwatch.scheduling.config import ScheduleConfig, redact_url, redis_url_for
from korgwatch.scheduling.enqueuer import RunEnqueuer
from korgwatch.scheduling.runner import CRAWL_COMMAND, SAMPLE_EBAY_CREDENTIALS, CrawlRunner

if TYPE_CHECKING:
    from crawler.demo.site import RunningSite

logger = logging.getLogger("korgwatch.scheduler")

_EVENT_NAMES = {
    EVENT_JOB_SUBMITTED: "submitted",
    EVENT_JOB_MAX_INSTANCES: "skipped_running",
    EVENT_JOB_MISSED: "missed",
    EVENT_JOB_ERROR: "error",
}


def resolve_db_url(config: ScheduleConfig, db: str | None = None) -> str:
    """The store, resolved as every command resolves it (korgwatch.store): `--db`, then KORGWATCH_DB, then
    `db:` in this schedule file, then the data directory's SQLite file.

    The sample mode has no store of its own unless the file names one (the shipped file does): crawls of the
    sample site, `korgwatch runs`, `status` and `queue` then all read the same one. Raises StoreError.
    """
    from korgwatch.store import resolve_store

    return resolve_store(db, config.path).url


@dataclass
class SchedulerService:
    """One scheduler process: the job store, the crawl runner (or, distributed, the run enqueuer) and
    (optionally) the sample site. `redis_url` defaults to KORGWATCH_REDIS_URL; only distributed mode uses it."""

    config: ScheduleConfig
    db_url: str
    crawl_command: tuple[str, ...] = CRAWL_COMMAND
    redis_url: str | None = None
    events: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._stack = ExitStack()
        self._engine: Engine | None = None
        self.scheduler: jobs.CrawlScheduler | None = None
        self.runner: CrawlRunner | None = None
        self.enqueuer: RunEnqueuer | None = None  # instead of `runner`, in distributed mode
        self.site: RunningSite | None = None  # the sample site, when `sample_sites` is on
        self._stopped = threading.Event()
        self.notifier: BackgroundNotifier | None = None  # notify.yaml's targets: digests after each run

    def start(self) -> jobs.SyncReport:
        """Migrate, start the sample site if configured, apply schedule.yaml, and begin running jobs."""
        from db.migrate import upgrade

        redis_url = redis_url_for(self.config, self.redis_url)  # a missing URL fails before anything starts
        upgrade(self.db_url)
        if self.config.sample_sites:
            from crawler.demo.site import FixtureSite, serve

            self.site = self._stack.enter_context(serve(FixtureSite(), port=self.config.sample_port))
            logger.info("sample site on %s: crawls go there, not to the internet", self.site.root)
        if redis_url is None:
            clean_stale_work_dirs()
            self.runner = self._crawl_runner()
            runner.activate(self.runner)
        else:
            self.enqueuer = RunEnqueuer(self.config, self.db_url, redis_url, base_url_for=self._base_url_for)
            runner.activate(self.enqueuer)
            logger.info("distributed: due runs are enqueued in Redis %s for the workers", redact_url(redis_url))
        self._engine = make_engine(self.db_url)
        self.scheduler = jobs.new_scheduler(self._engine, self.config, workers=max(4, len(self.config.jobs) + 1))
        self.scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR)
        self.notifier = BackgroundNotifier.start_for(self.db_url)
        if self.notifier is not None:
            poke = self.notifier.poke
            self.scheduler.add_listener(lambda _event: poke(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self.scheduler.start(paused=True)  # apply schedule.yaml before anything due can run
        report = jobs.sync_jobs(self.scheduler, self.config)
        logger.info("schedule applied from %s: %s", self.config.path, report.summary())
        for job in self.scheduler.get_jobs():
            logger.info("%s: %s, next run %s", job.id, job.trigger, job.next_run_time or "paused")
        self.scheduler.resume()
        poller = threading.Thread(target=self._poll, name="korgwatch-scheduler-poll", daemon=True)
        poller.start()
        return report

    def _base_url_for(self, source: str) -> str | None:
        """With `sample_sites`, the source's part of the sample site (workers must be able to reach it)."""
        return f"{self.site.root}/{source}" if self.site else None

    def _crawl_runner(self) -> CrawlRunner:
        extra_env = dict(SAMPLE_EBAY_CREDENTIALS) if self.site else {}  # the sample site accepts any
        return CrawlRunner(
            self.config,
            self.db_url,
            base_url_for=self._base_url_for,
            crawl_command=self.crawl_command,
            extra_env=extra_env,
        )

    def _poll(self) -> None:
        """Wake the scheduler every `poll` seconds: APScheduler otherwise sleeps until the next run time it
        knows, and would not see a job that another process made due (run-now) or resumed."""
        while not self._stopped.wait(self.config.poll_seconds):
            self.wakeup()

    def _on_event(self, event: JobEvent) -> None:
        name = _EVENT_NAMES.get(event.code, str(event.code))
        self.events[name] += 1
        if event.code == EVENT_JOB_MAX_INSTANCES:
            logger.info("%s: still running, this trigger is skipped", event.job_id)
        elif event.code == EVENT_JOB_MISSED:
            logger.warning("%s: run missed (later than misfire_grace_time)", event.job_id)
        elif event.code == EVENT_JOB_ERROR:
            logger.error("%s: job raised %r", event.job_id, getattr(event, "exception", None))

    def wakeup(self) -> None:
        """Re-read the job store now (the CLI may have paused, resumed or run-now'ed a job)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.wakeup()

    def stop(self, *, force: bool = False) -> None:
        """Start no new crawl, let running ones finish within their grace (none with `force`), then shut down.

        In distributed mode only an enqueue in progress is waited for: enqueued runs are the workers'."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        for active in (self.runner, self.enqueuer):
            if active is not None:
                active.stop(force=force)
                active.wait_idle()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        runner.activate(None)
        for active in (self.runner, self.enqueuer):
            if active is not None:
                active.close()
        if self.notifier is not None:
            self.notifier.stop()  # a last pass: the digests of the runs that just finished
        if self._engine is not None:
            self._engine.dispose()
        self._stack.close()
        self._stopped.set()

    def run_forever(self) -> int:
        """Run until SIGTERM/SIGINT; a second signal kills running crawls at once. Returns the exit status."""
        stop_requested = threading.Event()
        signals_seen = 0

        def on_signal(number: int, _frame: FrameType | None) -> None:
            nonlocal signals_seen
            signals_seen += 1
            name = signal.Signals(number).name
            if signals_seen == 1:
                logger.info("%s: stopping; running crawls may finish within their grace period", name)
                stop_requested.set()
            elif self.runner is not None:
                logger.warning("%s again: killing running crawls now", name)
                self.runner.stop(force=True)

        previous: dict[int, Any] = {}
        for number in (signal.SIGTERM, signal.SIGINT):
            previous[number] = signal.signal(number, on_signal)
        try:
            self.start()
            while not stop_requested.wait(1.0):  # a timed wait: signal handlers run promptly in this thread
                pass
            self.stop()
        finally:
            if not self._stopped.is_set():
                self.stop(force=True)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        logger.info("scheduler stopped")
        return 0


def configure_logging(level: str = "INFO") -> None:
    """Timestamped lines on stderr; APScheduler's own chatter only from warnings up."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
