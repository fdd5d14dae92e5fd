"""The job store: APScheduler 3 jobs kept in the data's own database, one job per source (`crawl:<source>`).

Jobs live in a `SQLAlchemyJobStore` (table `apscheduler_jobs`) so that a restart keeps each job's next run
time and its paused state. `sync_jobs()` applies schedule.yaml on start: new entries are added, changed ones
rescheduled (a paused job stays paused), removed or disabled ones deleted, unchanged ones left alone.

The CLI (`korgwatch schedule pause/resume/run-now`) edits the same rows from another process. A running
scheduler re-reads the due jobs on every wakeup, and `korgwatch schedule run` wakes up at least every `poll`
seconds, so such a change takes effect within `poll` seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from db.engine import make_engine
from korgwatch.scheduling.config import JobConfig, ScheduleConfig, cron_fields
from korgwatch.scheduling.runner import JOB_FUNCTION

JOB_PREFIX = "crawl:"
JOBS_TABLE = "apscheduler_jobs"


class UnknownJobError(LookupError):
    """No stored job for that source: the scheduler has not been started with it enabled."""


def job_id(source: str) -> str:
    return f"{JOB_PREFIX}{source}"


def source_of(job: Job) -> str:
    return str(job.id).removeprefix(JOB_PREFIX)


def make_trigger(job: JobConfig) -> BaseTrigger:
    """The APScheduler trigger of one schedule entry (cron in the entry's time zone, or an interval)."""
    jitter = int(job.jitter) or None
    if job.cron:
        return CronTrigger(**cron_fields(job.cron), timezone=job.timezone, jitter=jitter)
    return IntervalTrigger(seconds=job.interval or 0, timezone=job.timezone, jitter=jitter)


def job_store(engine: Engine) -> SQLAlchemyJobStore:
    return SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)


class CrawlScheduler(BackgroundScheduler):
    """APScheduler's BackgroundScheduler, processing jobs only while running.

    APScheduler 3.11's main loop processes the due jobs once more after `shutdown()` (its state is then
    "stopped", not "paused"): that would submit them to a shut executor and advance their next run times
    without running them. Stopping must not eat a due run.
    """

    def _process_jobs(self) -> float | None:
        if self.state != STATE_RUNNING:
            return None
        return super()._process_jobs()  # type: ignore[no-any-return]


class StoreScheduler(BaseScheduler):
    """A scheduler without a main loop: the CLI reads and edits jobs through it, and it never runs one."""

    def wakeup(self) -> None:
        """Nothing to wake: a running scheduler elsewhere re-reads the job store every `poll` seconds."""

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


def new_scheduler(engine: Engine, config: ScheduleConfig, *, workers: int = 4) -> CrawlScheduler:
    """A scheduler on the database's job store; one crawl at a time per source, missed runs coalesced."""
    from apscheduler.executors.pool import ThreadPoolExecutor

    return CrawlScheduler(
        jobstores={"default": job_store(engine)},
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=config.timezone,
    )


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = [f"{label} {', '.join(names)}" for label, names in self._parts() if names]
        return "; ".join(parts) or "no jobs"

    def _parts(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return (("added", self.added), ("changed", self.changed), ("removed", self.removed), ("kept", self.unchanged))


def sync_jobs(scheduler: BaseScheduler, config: ScheduleConfig, now: datetime | None = None) -> SyncReport:
    """Make the stored jobs match schedule.yaml (see the module docstring)."""
    existing = {str(job.id): job for job in scheduler.get_jobs() if str(job.id).startswith(JOB_PREFIX)}
    wanted = {job_id(j.source): j for j in config.enabled()}
    added, changed, removed, unchanged = [], [], [], []
    for identifier, job in existing.items():
        if identifier not in wanted:
            scheduler.remove_job(identifier)
            removed.append(source_of(job))
    for identifier, entry in wanted.items():
        trigger = make_trigger(entry)
        options: dict[str, Any] = {
            "name": f"crawl {entry.source}",
            "args": [entry.source],
            "kwargs": {"schedule": entry.fingerprint()},
            "misfire_grace_time": int(entry.misfire_grace_time) or None,
            "coalesce": True,
            "max_instances": 1,
        }
        stored = existing.get(identifier)
        if stored is None:
            scheduler.add_job(JOB_FUNCTION, trigger=trigger, id=identifier, **options)
            added.append(entry.source)
        elif stored.kwargs.get("schedule") == entry.fingerprint():
            unchanged.append(entry.source)
        else:
            paused = stored.next_run_time is None
            moment = now or datetime.now(trigger.timezone)  # type: ignore[attr-defined]
            next_run = None if paused else trigger.get_next_fire_time(None, moment)
            scheduler.modify_job(identifier, trigger=trigger, next_run_time=next_run, **options)
            changed.append(entry.source)
    return SyncReport(tuple(added), tuple(changed), tuple(removed), tuple(unchanged))


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A stored job as `korgwatch schedule list` shows it."""

    source: str
    trigger: str
    next_run_time: datetime | None

    @property
    def paused(self) -> bool:
        return self.next_run_time is None


def _info(job: Job) -> JobInfo:
    return JobInfo(source_of(job), str(job.trigger), job.next_run_time)


@contextmanager
def store_scheduler(db_url: str, config: ScheduleConfig) -> Iterator[StoreScheduler]:
    """A scheduler on the job store that reads and edits jobs but never runs one (see StoreScheduler)."""
    from db.migrate import upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    scheduler = StoreScheduler(jobstores={"default": job_store(engine)}, timezone=config.timezone)
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)
        engine.dispose()


def list_jobs(db_url: str, config: ScheduleConfig) -> list[JobInfo]:
    with store_scheduler(db_url, config) as scheduler:
        return sorted((_info(j) for j in scheduler.get_jobs() if str(j.id).startswith(JOB_PREFIX)), key=_order)


def _order(info: JobInfo) -> tuple[int, float, str]:
    return (info.paused, info.next_run_time.timestamp() if info.next_run_time else 0.0, info.source)


def _edit(db_url: str, config: ScheduleConfig, source: str, action: str) -> JobInfo:
    with store_scheduler(db_url, config) as scheduler:
        identifier = job_id(source)
        try:
            if action == "pause":
                job = scheduler.pause_job(identifier)
            elif action == "resume":
                job = scheduler.resume_job(identifier)
            else:
                stored = scheduler.get_job(identifier)
                if stored is None:
                    raise JobLookupError(identifier)
                if stored.next_run_time is None:
                    raise ValueError(f"the {source} job is paused; `korgwatch schedule resume {source}` first")
                job = scheduler.modify_job(identifier, next_run_time=datetime.now(scheduler.timezone))
        except JobLookupError:
            raise UnknownJobError(
                f"no job for {source!r} in the job store: enable it in schedule.yaml and start the scheduler "
                "(`korgwatch schedule run`) once"
            ) from None
        if job is None:  # resume_job returns None when the trigger has no further run time
            raise UnknownJobError(f"the {source} job has no further run time and was removed")
        return _info(job)


def pause(db_url: str, config: ScheduleConfig, source: str) -> JobInfo:
    """Keep the job but give it no next run time; it stays paused across restarts until resumed."""
    return _edit(db_url, config, source, "pause")


def resume(db_url: str, config: ScheduleConfig, source: str) -> JobInfo:
    """Give a paused job its next run time from its trigger again."""
    return _edit(db_url, config, source, "resume")


def run_now(db_url: str, config: ScheduleConfig, source: str) -> JobInfo:
    """Make the job due now; the running scheduler starts it on its next wakeup (within `poll` seconds)."""
    return _edit(db_url, config, source, "run-now")
