"""Run one crawl in its own process, under a hard time limit, and make sure the run ends up recorded.

Each crawl is `korgwatch crawl SOURCE --no-progress --json TMP` in a child process with its own process
group: Scrapy's reactor cannot be restarted in one process, and a crashing spider must not take the scheduler
down. The crawl records its own `crawl_runs` row when it completes; when it does not (killed at its time limit,
crashed, killed at shutdown), this module writes the row, with the tail of the crawl's stderr.

The APScheduler job function is `run_scheduled_crawl`: stored jobs refer to it by its textual reference, so
moving it breaks the jobs stored in users' databases (the scheduler then recreates them from schedule.yaml).
In distributed mode the same stored jobs call a RunEnqueuer (enqueuer.py) instead, so switching modes needs no
change to the job store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from db.engine import make_engine, read_scope, session_scope
from db.run_ledger import running_local_run
from korgwatch.scheduling import history
from korgwatch.scheduling.children import die_with_parent, make_work_dir
from korgwatch.scheduling.config import ScheduleConfig, format_duration

logger = logging.getLogger("korgwatch.scheduler")

JOB_FUNCTION = "korgwatch.scheduling.runner:run_scheduled_crawl"
# The `korgwatch crawl` Typer command, run through this interpreter so that the child uses the same
# environment whether or not the `korgwatch` script is on PATH.
CRAWL_COMMAND: tuple[str, ...] = (sys.executable, "-m", "korgwatch.commands.crawling", "crawl")
LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 4000
WAIT_STEP = 0.1  # seconds between checks of a running crawl's limits
SAMPLE_EBAY_CREDENTIALS = {"EBAY_CLIENT_ID": "korgwatch-sample", "EBAY_CLIENT_SECRET": "korgwatch-sample-secret"}


@dataclass(frozen=True, slots=True)
class CrawlResult:
    """How one scheduled crawl ended, and who wrote its `crawl_runs` row (`crawl`, `scheduler` or nobody)."""

    source: str
    pid: int
    returncode: int
    outcome: str | None
    recorded_by: str | None
    crawl_run_id: int | None
    reason: str


@dataclass
class _Running:
    source: str
    process: subprocess.Popen[bytes]
    started: float
    kill_reason: str | None = None


class StoreEngine:
    """The store's engine, made on first use and disposed by `close()` (a runner or enqueuer mixes it in)."""

    db_url: str
    _engine: Engine | None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.db_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@dataclass
class CrawlRunner(StoreEngine):
    """Launches crawls, enforces their limits, records what they could not, and stops them cleanly.

    `base_url_for(source)` moves a source elsewhere (the sample site); `crawl_command` is the crawl's argv
    prefix. One crawl per source at a time, even if two jobs of the same source fire together.
    """

    config: ScheduleConfig
    db_url: str
    base_url_for: Callable[[str], str | None] = lambda _source: None
    crawl_command: Sequence[str] = CRAWL_COMMAND
    extra_env: Mapping[str, str] = field(default_factory=dict)
    launches: list[tuple[str, int]] = field(default_factory=list)  # (source, pid), for logs and tests
    results: list[CrawlResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._stop_at: float | None = None
        self._force = False
        self._engine: Engine | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    def stop(self, *, force: bool = False) -> None:
        """Start no more crawls; running ones may finish within their `stop_grace` (none with `force`)."""
        with self._lock:
            if self._stop_at is None:
                self._stop_at = time.monotonic()
            self._force = self._force or force

    def running(self) -> dict[str, int]:
        """Pid of each running crawl, by source."""
        with self._lock:
            return {name: r.process.pid for name, r in self._running.items()}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no crawl runs; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_STEP)
        return True

    # --- one crawl --------------------------------------------------------------------------------------

    def command(self, source: str, json_path: Path) -> list[str]:
        """The crawl's argv. The database goes in the environment (KORGWATCH_DB), keeping passwords out of ps."""
        argv = [*self.crawl_command, source, "--no-progress", "--json", str(json_path)]
        argv += ["--log-level", self.config.log_level]
        base_url = self.base_url_for(source)
        if base_url:
            argv += ["--base-url", base_url]
        if self.config.sample_sites and base_url:
            argv.append("--impolite")  # our own fixture site on loopback: no need to wait between requests
        if self.config.sources_file is not None:
            argv += ["--config", str(self.config.sources_file)]
        return argv

    def run(self, source: str) -> CrawlResult | None:
        """Crawl `source` once and wait for it; None if it was not started (stopping, or already running)."""
        job = self.config.job(source)
        if job is None:
            logger.error("crawl %s: not in %s; remove the job or add the source", source, self.config.path)
            return None
        with read_scope(self.engine) as session:
            holder = running_local_run(session, source)
        if holder is not None:  # the lease is in the database: it holds across scheduler restarts
            logger.warning("crawl %s not started: run %d (process %s) is still running", source, *holder)
            return None
        work = make_work_dir(source)
        try:
            with read_scope(self.engine) as session:
                before = history.last_run_id(session, source)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160", "KORGWATCH_DB": self.db_url}
            env.update(self.extra_env)
            argv = self.command(source, work / "runs.json")
            with self._lock:
                if self._stop_at is not None:
                    logger.info("crawl %s not started: the scheduler is stopping", source)
                    return None
                if source in self._running:
                    logger.warning("crawl %s not started: the previous one is still running", source)
                    return None
                started_at = datetime.now(UTC)
                with open(work / "stdout.log", "wb") as out, open(work / "stderr.log", "wb") as err:
                    process = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        env=env,
                        start_new_session=True,
                        preexec_fn=die_with_parent(),
                    )
                running = _Running(source, process, time.monotonic())
                self._running[source] = running
                self.launches.append((source, process.pid))
            logger.info("crawl %s started (pid %d)", source, process.pid)
            try:
                returncode = self._wait(running, job.time_limit, job.stop_grace)
            finally:
                with self._lock:
                    self._running.pop(source, None)
            result = self._settle(source, running, returncode, started_at, before, work)
            self.results.append(result)
            return result
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _wait(self, running: _Running, time_limit: float, stop_grace: float) -> int:
        """Wait for the crawl; at its time limit, or when a stop's grace runs out, kill its process group."""
        process = running.process
        while True:
            try:
                return process.wait(timeout=WAIT_STEP)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            with self._lock:
                stop_at, force = self._stop_at, self._force
            if now - running.started >= time_limit:
                limit = format_duration(time_limit)
                running.kill_reason = f"timed out: killed at the scheduler's hard limit of {limit}"
            elif stop_at is not None and (force or now - stop_at >= stop_grace):
                grace = "at once (stopped twice)" if force else f"after the {format_duration(stop_grace)} grace period"
                running.kill_reason = f"killed: the scheduler stopped and the crawl did not finish {grace}"
            if running.kill_reason:
                _kill_group(process)
                return process.wait()

    def _settle(
        self,
        source: str,
        running: _Running,
        returncode: int,
        started_at: datetime,
        before: int,
        work: Path,
    ) -> CrawlResult:
        """Find the crawl's own row, or write the one it could not."""
        pid = running.process.pid
        report = _read_json(work / "runs.json")
        with session_scope(self.engine) as session:
            rows = history.runs_since(session, source, before)
            if rows and rows[-1].outcome is not None:
                row = rows[-1]
                if report and report.get("listings_unchanged") is not None:
                    history.set_listings_unchanged(session, row.id, int(report["listings_unchanged"]))
                logger.info("crawl %s finished: %s (exit %d, run %d)", source, row.outcome, returncode, row.id)
                return CrawlResult(source, pid, returncode, row.outcome, "crawl", row.id, "recorded by the crawl")
            if report and report.get("outcome") in ("skipped", "busy"):
                message = "; ".join(report.get("messages") or []) or "skipped"
                logger.warning("crawl %s skipped: %s", source, message)
                return CrawlResult(source, pid, returncode, None, None, None, message)
            if running.kill_reason and running.kill_reason.startswith("timed out"):
                outcome, reason = "timed_out", running.kill_reason
            elif running.kill_reason:
                outcome, reason = "failed", running.kill_reason
            elif returncode < 0:
                outcome, reason = "failed", f"crashed: killed by {_signal_name(-returncode)}"
            elif returncode == 0:
                outcome, reason = "failed", "exited without recording a run"
            else:
                outcome, reason = "failed", f"crashed: exit status {returncode} without recording a run"
            tail = _tail(work / "stderr.log") or _tail(work / "stdout.log")
            log_tail = f"SCHEDULER {reason}" + (f"\n{tail}" if tail else "")
            if rows:  # the crawl opened its run at its start and was stopped before closing it
                run_id = history.close_run(session, rows[-1].id, outcome=outcome, log_tail=log_tail)
            else:
                run_id = history.record_run(
                    session,
                    source,
                    started_at=started_at,
                    finished_at=datetime.now(UTC),
                    outcome=outcome,
                    log_tail=log_tail,
                )
        logger.warning("crawl %s %s: %s (run %d)", source, outcome, reason, run_id)
        return CrawlResult(source, pid, returncode, outcome, "scheduler", run_id, reason)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the crawl's whole process group: the crawl writes each row in one transaction, so a kill
    leaves no half-written row, and a graceful SIGTERM would have Scrapy record a misleading `failed`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()[-LOG_TAIL_CHARS * 2 :]
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(lines)[-LOG_TAIL_CHARS:]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return runs[0] if isinstance(runs, list) and runs and isinstance(runs[0], dict) else None


# --- the APScheduler job ----------------------------------------------------------------------------------


class JobRunner(Protocol):
    """What a stored job calls: a CrawlRunner, or in distributed mode a RunEnqueuer."""

    def run(self, source: str) -> object: ...


_active: JobRunner | None = None


def activate(runner: JobRunner | None) -> None:
    """Make `runner` the one the stored jobs of this process call (None when the scheduler stops)."""
    global _active
    _active = runner


def run_scheduled_crawl(source: str, schedule: str = "") -> None:
    """The stored job: crawl `source` with this process's runner (in distributed mode: enqueue a run of it).

    `schedule` is the fingerprint of the schedule.yaml entry the job was built from; the scheduler compares it
    on start to see whether the entry changed. It plays no part in the crawl.
    """
    runner = _active
    if runner is None:
        raise RuntimeError("no scheduler is running in this process")
    runner.run(source)
