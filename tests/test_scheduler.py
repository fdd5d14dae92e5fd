"""The scheduler in-process, against the sample (fixture) site on loopback and a real SQLite file.

Each crawl is a real `korgwatch crawl` child process (a few seconds each), so intervals are 1s and every wait
polls with a deadline instead of sleeping.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from db.engine import make_engine, session_scope
from korgwatch.scheduling import jobs
from korgwatch.scheduling.config import load_schedule
from korgwatch.scheduling.history import recent_runs
from korgwatch.scheduling.service import SchedulerService

REPO_ROOT = Path(__file__).resolve().parent.parent
CRAWL_WAIT = 45.0  # a crawl is a Scrapy process: seconds to start on a loaded machine


def fast_sources(path: Path) -> Path:
    """The shipped sources file without politeness delays (the sample site is ours, on loopback)."""
    data = yaml.safe_load((REPO_ROOT / "config" / "sources.yaml").read_text(encoding="utf-8"))
    for source in data["sources"].values():
        source["delay"] = 0
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def write_schedule(tmp_path: Path, sources: dict[str, dict[str, Any]], **top: Any) -> Path:
    fast_sources(tmp_path / "fast-sources.yaml")
    data = {
        "sample_sites": True,
        "sample_interval": "1s",
        "poll": "1s",
        "sources_file": "fast-sources.yaml",
        "defaults": {"time_limit": "60s", "stop_grace": "5s", "misfire_grace_time": "30s"},
        "sources": sources,
        **top,
    }
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def runs_of(db_url: str, source: str) -> list[Any]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            return list(reversed(recent_runs(session, source, 50)))  # oldest first
    finally:
        engine.dispose()


def start(path: Path, db_url: str, services: list[SchedulerService]) -> SchedulerService:
    service = SchedulerService(load_schedule(path), db_url)
    services.append(service)
    service.start()
    return service


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def test_two_scheduled_runs_are_recorded_and_overlapping_triggers_skipped(
    tmp_path: Path, sqlite_url: str, services: list[SchedulerService]
) -> None:
    path = write_schedule(tmp_path, {"matrixsynth": {"enabled": True, "interval": "1h"}})
    service = start(path, sqlite_url, services)
    assert service.runner is not None
    wait_for(lambda: len(runs_of(sqlite_url, "matrixsynth")) >= 2, 2 * CRAWL_WAIT, "two recorded runs")
    service.stop()

    first, second = runs_of(sqlite_url, "matrixsynth")[:2]
    assert (first.outcome, second.outcome) == ("ok", "ok")
    assert first.listings_new > 0 and second.listings_seen > 0
    assert second.listings_unchanged is not None  # completed from the crawl's JSON report
    assert [r.recorded_by for r in service.runner.results[:2]] == ["crawl", "crawl"]
    # The 1s trigger fired during each multi-second crawl: skipped, never a second process.
    assert service.events["skipped_running"] >= 1
    assert len(service.runner.launches) == len(service.runner.results)
    assert service.site is not None and service.site.count(source="matrixsynth") > 0


def test_hung_crawl_is_killed_at_its_limit_and_recorded_timed_out(
    tmp_path: Path, sqlite_url: str, services: list[SchedulerService]
) -> None:
    path = write_schedule(
        tmp_path, {"matrixsynth": {"enabled": True, "interval": "1h", "time_limit": "8s"}}, sample_interval="1s"
    )
    service = SchedulerService(load_schedule(path), sqlite_url)
    services.append(service)
    service.start()
    assert service.site is not None and service.runner is not None
    service.site.inject("*/feeds/*", delay=120)  # the server never answers within the limit
    result = wait_for(lambda: service.runner.results[:1], 8 + CRAWL_WAIT, "the killed run")[0]  # type: ignore[union-attr]
    launches = list(service.runner.launches)
    service.stop(force=True)

    assert (result.outcome, result.recorded_by) == ("timed_out", "scheduler")
    assert not alive(result.pid)
    (run,) = runs_of(sqlite_url, "matrixsynth")[:1]
    assert run.outcome == "timed_out" and run.finished_at is not None
    assert "hard limit of 8s" in (run.log_tail or "")
    assert len(launches) == 1  # eight 1s triggers while it hung: none started a second crawl
    assert service.events["skipped_running"] >= 3


def test_crashing_crawl_is_recorded_failed_and_the_next_still_runs(
    tmp_path: Path, sqlite_url: str, services: list[SchedulerService]
) -> None:
    path = write_schedule(tmp_path, {"matrixsynth": {"enabled": True, "interval": "1h"}})
    sources = tmp_path / "fast-sources.yaml"
    good = sources.read_text(encoding="utf-8")
    sources.write_text(good.replace("page_limit:", "page_limitt:", 1), encoding="utf-8")  # the crawl exits 2
    service = start(path, sqlite_url, services)
    wait_for(lambda: runs_of(sqlite_url, "matrixsynth"), CRAWL_WAIT, "the crashed run")
    sources.write_text(good, encoding="utf-8")
    wait_for(lambda: any(r.outcome == "ok" for r in runs_of(sqlite_url, "matrixsynth")), CRAWL_WAIT, "a good run")
    service.stop()

    crashed = runs_of(sqlite_url, "matrixsynth")[0]
    assert crashed.outcome == "failed" and crashed.finished_at is not None
    assert "exit status 2" in (crashed.log_tail or "")
    assert "page_limitt" in (crashed.log_tail or "")  # the crawl's own stderr, for whoever reads `korgwatch runs`


def test_restart_keeps_the_job_store_and_applies_schedule_changes(
    tmp_path: Path, db_url: str, services: list[SchedulerService]
) -> None:
    """No crawl here: the job store itself, on SQLite and PostgreSQL."""
    sources = {
        "matrixsynth": {"enabled": True, "interval": "1h"},
        "reverb": {"enabled": True, "cron": "0 3 * * *"},
        "jsonld": {"enabled": True, "interval": "2h"},
    }
    path = write_schedule(tmp_path, sources, sample_sites=False)
    config = load_schedule(path)
    first = start(path, db_url, services)
    first.stop()
    before = {j.source: j for j in jobs.list_jobs(db_url, config)}
    assert set(before) == {"matrixsynth", "reverb", "jsonld"}
    jobs.pause(db_url, config, "jsonld")

    sources["reverb"]["cron"] = "30 4 * * *"  # changed: rescheduled
    del sources["matrixsynth"]["enabled"]  # defaults to disabled: removed
    sources["jsonld"]["interval"] = "3h"  # changed while paused: stays paused
    sources["yahoo_auctions"] = {"enabled": True, "interval": "1d"}  # new
    write_schedule(tmp_path, sources, sample_sites=False)
    second = start(path, db_url, services)
    second.stop()

    after = {j.source: j for j in jobs.list_jobs(db_url, load_schedule(path))}
    assert set(after) == {"reverb", "jsonld", "yahoo_auctions"}
    assert after["jsonld"].paused and "3:00:00" in after["jsonld"].trigger
    assert after["reverb"].next_run_time is not None and after["reverb"].next_run_time.strftime("%H:%M") == "04:30"

    third = start(path, db_url, services)  # unchanged file: next run times survive the restart
    third.stop()
    again = {j.source: j for j in jobs.list_jobs(db_url, load_schedule(path))}
    assert again["yahoo_auctions"].next_run_time == after["yahoo_auctions"].next_run_time
    assert again["reverb"].next_run_time == after["reverb"].next_run_time
    assert again["jsonld"].paused


def test_running_scheduler_picks_up_run_now_and_pause_from_another_process(
    tmp_path: Path, sqlite_url: str, services: list[SchedulerService]
) -> None:
    path = write_schedule(
        tmp_path, {"matrixsynth": {"enabled": True, "interval": "1h"}}, sample_interval="1h", poll="1s"
    )
    config = load_schedule(path)
    service = start(path, sqlite_url, services)
    assert service.runner is not None
    time.sleep(1.5)  # more than one poll: nothing is due for an hour
    assert service.runner.launches == []

    jobs.run_now(sqlite_url, config, "matrixsynth")  # what `korgwatch schedule run-now` does
    wait_for(lambda: service.runner.launches, 5, "run-now to start a crawl within the poll interval")  # type: ignore[union-attr]
    jobs.pause(sqlite_url, config, "matrixsynth")
    wait_for(lambda: runs_of(sqlite_url, "matrixsynth"), CRAWL_WAIT, "the run-now run")
    service.stop()
    assert runs_of(sqlite_url, "matrixsynth")[0].outcome == "ok"
    (info,) = jobs.list_jobs(sqlite_url, config)
    assert info.paused  # the scheduler's own update after the run did not undo the pause
