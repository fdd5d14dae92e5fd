"""The scheduler in distributed mode: due jobs enqueue runs in the real Redis and open them in the real PostgreSQL.

No worker runs here: a run stays open (outcome NULL), which is what a freshly enqueued run looks like. The tests
use Redis database 5 (other tests share database 0's `korgwatch:*` keys) and flush only that database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import typer
import yaml
from test_scheduler import runs_of, wait_for
from typer.testing import CliRunner

from crawler.distributed.keys import StartMessage, start_key
from korgwatch.commands.schedule import register
from korgwatch.scheduling import jobs
from korgwatch.scheduling.config import ScheduleError, load_schedule, redis_url_for
from korgwatch.scheduling.service import SchedulerService, resolve_db_url

REPO_ROOT = Path(__file__).resolve().parent.parent
REDIS_DB = 5
WAIT = 20.0  # seconds; an enqueue is a ping, a migration check and one insert


def on_database(url: str, number: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """The test Redis on database 5, empty before and after the test."""
    url = on_database(redis_url, REDIS_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def refused_redis() -> str:
    """A Redis URL on a loopback port nothing listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/{REDIS_DB}"


def write_schedule(tmp_path: Path, sources: dict[str, dict[str, Any]], **top: Any) -> Path:
    data = {"distributed": True, "sample_sites": False, "poll": "1s", "sources": sources, **top}
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def start(path: Path, db_url: str, redis_url: str, services: list[SchedulerService], marker: Path) -> SchedulerService:
    """A distributed scheduler whose crawl command, were it ever run, would leave `marker` behind."""
    crawl = (sys.executable, "-c", f"open({str(marker)!r}, 'w').close()")
    service = SchedulerService(load_schedule(path), db_url, crawl_command=crawl, redis_url=redis_url)
    services.append(service)
    service.start()
    return service


def start_messages(redis_url: str, source: str) -> list[StartMessage]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [StartMessage.loads(raw) for raw in client.lrange(start_key(source), 0, -1)]
    finally:
        client.close()


def test_due_job_enqueues_one_run_and_starts_no_crawl(
    tmp_path: Path, postgres_url: str, redis_db: str, services: list[SchedulerService]
) -> None:
    """Every 1s trigger fires while the run is open (no worker closes it): one run, one message, no crawl."""
    path = write_schedule(
        tmp_path, {"matrixsynth": {"enabled": True, "interval": "1h"}}, sample_sites=True, sample_interval="1s"
    )
    marker = tmp_path / "crawled"
    service = start(path, postgres_url, redis_db, services, marker)
    assert service.enqueuer is not None and service.site is not None
    results = wait_for(lambda: service.enqueuer.results[2:] and service.enqueuer.results, WAIT, "three triggers")  # type: ignore[union-attr]
    service.stop()

    (run,) = runs_of(postgres_url, "matrixsynth")
    assert run.outcome is None and run.finished_at is None  # open: the workers' to crawl and close
    (message,) = start_messages(redis_db, "matrixsynth")
    assert (message.run, message.source, message.full) == (run.id, "matrixsynth", False)
    assert message.base_url == f"{service.site.root}/matrixsynth"  # the scheduler's own sample site
    assert [r.status for r in results[:3]] == ["enqueued", "skipped", "skipped"]
    assert f"run {run.id} is still open" in results[1].reason
    assert service.runner is None and not marker.exists()
    assert service.events["error"] == 0


def test_run_now_is_enqueued_by_the_running_scheduler(
    tmp_path: Path, postgres_url: str, redis_db: str, services: list[SchedulerService]
) -> None:
    path = write_schedule(tmp_path, {"reverb": {"enabled": True, "interval": "1h"}})
    config = load_schedule(path)
    service = start(path, postgres_url, redis_db, services, tmp_path / "crawled")
    time.sleep(1.5)  # more than one poll: nothing is due for an hour
    assert start_messages(redis_db, "reverb") == []

    jobs.run_now(postgres_url, config, "reverb")  # what `korgwatch schedule run-now reverb` does
    (message,) = wait_for(lambda: start_messages(redis_db, "reverb"), WAIT, "run-now's start message")
    service.stop()

    (run,) = runs_of(postgres_url, "reverb")
    assert (message.run, message.base_url) == (run.id, None)  # no sample site: the sources file's base URL
    assert run.outcome is None
    (info,) = jobs.list_jobs(postgres_url, config)
    assert info.next_run_time is not None and not info.paused  # back on its own schedule


def test_redis_refusing_connections_records_failed_runs_and_the_scheduler_goes_on(
    tmp_path: Path,
    postgres_url: str,
    refused_redis: str,
    services: list[SchedulerService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = write_schedule(tmp_path, {"jsonld": {"enabled": True, "interval": "1s"}})
    service = start(path, postgres_url, refused_redis, services, tmp_path / "crawled")
    wait_for(lambda: len(runs_of(postgres_url, "jsonld")) >= 2, WAIT, "two failed enqueues")
    assert service.scheduler is not None and service.scheduler.running
    service.stop()

    port = urlsplit(refused_redis).port
    for run in runs_of(postgres_url, "jsonld"):
        assert run.outcome == "failed" and run.finished_at is not None
        assert (run.log_tail or "").startswith("SCHEDULER enqueue failed: Redis unreachable at redis://127.0.0.1")
        assert f"{port}" in (run.log_tail or "") and "ConnectionError" in (run.log_tail or "")
    assert service.events["error"] == 0  # handled and recorded, not a crashed job
    assert any("enqueue jsonld failed" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["status", "--format", "json", "--config", str(path), "--db", postgres_url])
    assert result.exit_code == 0, result.output
    (status,) = json.loads(result.output)
    assert status["last_run"]["outcome"] == "failed" and "Redis unreachable" in status["last_run"]["log_tail"]


# --- configuration: no service needed ---------------------------------------------------------------------


def test_distributed_without_a_redis_url_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text("poll: 1s\ndistributed: true\nsources:\n  reverb: {enabled: true, interval: 6h}\n")
    config = load_schedule(path)
    with pytest.raises(ScheduleError) as caught:
        redis_url_for(config, None, environ={})
    assert str(caught.value) == (
        f"{path}:2: distributed: true needs a Redis URL: set KORGWATCH_REDIS_URL or pass --redis"
    )
    assert redis_url_for(config, None, environ={"KORGWATCH_REDIS_URL": "redis://h:6379/1"}) == "redis://h:6379/1"
    assert redis_url_for(config, "redis://other/2", environ={"KORGWATCH_REDIS_URL": "redis://h/1"}) == "redis://other/2"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("distributed: maybe\n", 2, "distributed: expected true or false, got 'maybe'"),
        ("distributed: true\nsources_file: sources.yaml\n", 3, "sources_file: not used with `distributed: true`"),
    ],
)
def test_distributed_problems_name_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(f"poll: 1s\n{text}sources:\n  reverb: {{enabled: true, interval: 6h}}\n")
    with pytest.raises(ScheduleError) as caught:
        load_schedule(path)
    assert f"{path}:{line}: {problem}" in str(caught.value)


@pytest.mark.parametrize(
    ("distributed", "option", "environ", "problem"),
    [
        (True, "http://:hunter2@cache:6379/0", {}, "--redis: expected a Redis URL (redis://, rediss://, unix://)"),
        (True, None, {"KORGWATCH_REDIS_URL": "cache:6379"}, "KORGWATCH_REDIS_URL: expected a Redis URL"),
        (False, "redis://cache:6379/0", {}, "--redis: only used with `distributed: true` in "),
    ],
)
def test_bad_or_misplaced_redis_urls_name_the_option(
    tmp_path: Path, distributed: bool, option: str | None, environ: dict[str, str], problem: str
) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(f"distributed: {str(distributed).lower()}\nsources:\n  reverb: {{enabled: true, interval: 6h}}\n")
    with pytest.raises(ScheduleError) as caught:
        redis_url_for(load_schedule(path), option, environ=environ)
    assert problem in str(caught.value)
    assert "hunter2" not in str(caught.value)  # a password never reaches a message


def test_commands_refuse_to_start_without_a_redis_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KORGWATCH_REDIS_URL", raising=False)
    path = tmp_path / "schedule.yaml"
    path.write_text("distributed: true\nsources:\n  reverb: {enabled: true, interval: 6h}\n")
    db = f"sqlite:///{tmp_path / 'k.sqlite'}"
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["schedule", "run", "--config", str(path), "--db", db], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"{path}:1: distributed: true needs a Redis URL" in " ".join(result.output.split())
    script = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scheduler.py"), "--config", str(path), "--db", db],
        env={k: v for k, v in os.environ.items() if k != "KORGWATCH_REDIS_URL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 2 and f"{path}:1: distributed: true needs a Redis URL" in script.stderr
    with pytest.raises(ScheduleError, match=r"schedule\.yaml:1: distributed: true needs a Redis URL"):
        SchedulerService(load_schedule(path), db).start()
    assert not (tmp_path / "k.sqlite").exists()  # refused before touching the database


def test_distributed_mode_uses_the_workers_database_not_the_sample_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KORGWATCH_DB", "postgresql+psycopg://kw@db/korgwatch")
    path = tmp_path / "schedule.yaml"
    path.write_text("sample_sites: true\ndistributed: true\nsources:\n  reverb: {enabled: true, interval: 6h}\n")
    assert resolve_db_url(load_schedule(path)) == "postgresql+psycopg://kw@db/korgwatch"
    # The sample store is named explicitly in the file (the shipped one does), and only when KORGWATCH_DB is unset:
    # every command resolves --db, then KORGWATCH_DB, then the file's `db:`.
    path.write_text(
        "sample_sites: true\ndb: '{data_dir}/sample/korgwatch-sample.sqlite'\n"
        "sources:\n  reverb: {enabled: true, interval: 6h}\n"
    )
    assert resolve_db_url(load_schedule(path)) == "postgresql+psycopg://kw@db/korgwatch"
    monkeypatch.delenv("KORGWATCH_DB")
    assert resolve_db_url(load_schedule(path)).endswith("/sample/korgwatch-sample.sqlite")
