"""`korgwatch schedule list|pause|resume|run-now`, `runs` and `status` through Typer's runner, on real SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.ingest import ensure_sources
from db.migrate import upgrade
from db.models import CrawlRun, Flag, Listing
from korgwatch.commands.schedule import register
from korgwatch.scheduling.config import load_schedule
from korgwatch.scheduling.history import record_run
from korgwatch.scheduling.service import SchedulerService

runner = CliRunner()
NOW = datetime.now(UTC)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def schedule(tmp_path: Path) -> Path:
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "poll: 1s\n"
        "sources:\n"
        "  reverb: {enabled: true, interval: 6h}\n"
        "  matrixsynth: {enabled: true, cron: '17 * * * *'}\n"
        "  ebay: {enabled: false, interval: 6h}\n",
        encoding="utf-8",
    )
    return path


def invoke(app: typer.Typer, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


def test_schedule_list_pause_resume_run_now(app: typer.Typer, schedule: Path, db_url: str) -> None:
    common = ("--config", str(schedule), "--db", db_url)
    before = invoke(app, "schedule", "list", *common)
    assert "added on next `schedule run`" in before and "disabled" in before
    invoke(app, "schedule", "pause", "reverb", *common, code=1)  # no job yet: says how to get one

    service = SchedulerService(load_schedule(schedule), db_url)
    service.start()  # creates the jobs; nothing is due for hours
    service.stop()

    listed = json.loads(invoke(app, "schedule", "list", *common, "--format", "json"))
    by_source = {row["source"]: row for row in listed}
    assert by_source["reverb"]["state"] == "scheduled" and by_source["reverb"]["next_run_time"]
    assert by_source["matrixsynth"]["schedule"] == "cron 17 * * * * (UTC)"
    assert by_source["ebay"]["state"] == "disabled"
    table = invoke(app, "schedule", "list", *common)
    assert "(in 5h59m" in table or "(in 6h)" in table

    assert "paused" in invoke(app, "schedule", "pause", "reverb", *common)
    assert "resume reverb` first" in invoke(app, "schedule", "run-now", "reverb", *common, code=1)
    listed = {r["source"]: r for r in json.loads(invoke(app, "schedule", "list", *common, "--format", "json"))}
    assert listed["reverb"]["state"] == "paused" and listed["reverb"]["next_run_time"] is None
    assert "resumed, next run" in invoke(app, "schedule", "resume", "reverb", *common)
    assert "due now" in invoke(app, "schedule", "run-now", "reverb", *common)
    listed = {r["source"]: r for r in json.loads(invoke(app, "schedule", "list", *common, "--format", "json"))}
    due = datetime.fromisoformat(listed["reverb"]["next_run_time"])
    assert abs((due - datetime.now(UTC)).total_seconds()) < 30


def add_run(session: object, source: str, outcome: str, seen: int, hours_ago: float) -> None:
    source_id = ensure_sources(session, [source])[source]  # type: ignore[arg-type]
    started = NOW - timedelta(hours=hours_ago)
    session.add(  # type: ignore[attr-defined]
        CrawlRun(
            source_id=source_id,
            started_at=started,
            finished_at=started + timedelta(seconds=42),
            outcome=outcome,
            pages=3,
            listings_new=seen,
            listings_unchanged=0,
        )
    )


def seed(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            for hours in (5, 4, 3, 2):
                add_run(session, "matrixsynth", "ok", 20, hours)
            add_run(session, "matrixsynth", "ok", 2, 1)  # far below its usual 20
            add_run(session, "reverb", "ok", 9, 6)
            for hours in (3, 2, 1):
                record_run(
                    session,
                    "reverb",
                    started_at=NOW - timedelta(hours=hours),
                    finished_at=NOW - timedelta(hours=hours) + timedelta(minutes=30),
                    outcome="timed_out",
                    log_tail="SCHEDULER timed out: killed at the scheduler's hard limit of 30m",
                )
            source_id = ensure_sources(session, ["reverb"])["reverb"]
            listing = Listing(
                source_id=source_id,
                external_id="1",
                url="https://reverb.com/item/1",
                title="Korg MS-20 SN 730144",
                first_seen=NOW,
                last_seen=NOW,
                content_hash="x",
                record_hash="x",
            )
            session.add(listing)
            session.flush()
            session.add_all(
                [
                    Flag(listing_id=listing.id, code="serial_outside_blocks", created_at=NOW),
                    Flag(listing_id=listing.id, code="serial_wrong_length", created_at=NOW, status="dismissed"),
                ]
            )
    finally:
        engine.dispose()


def test_runs_lists_newest_first_with_why(app: typer.Typer, schedule: Path, db_url: str) -> None:
    seed(db_url)
    common = ("--config", str(schedule), "--db", db_url)
    rows = json.loads(invoke(app, "runs", *common, "--format", "json", "--source", "reverb", "--limit", "2"))
    assert [r["outcome"] for r in rows] == ["timed_out", "timed_out"]
    assert rows[0]["started_at"] > rows[1]["started_at"]
    assert "hard limit" in rows[0]["log_tail"]
    table = invoke(app, "runs", *common)
    assert "timed_out" in table and "SCHEDULER timed out" in table and "matrixsynth" in table
    invoke(app, "runs", *common, "--format", "yaml", code=2)


def test_status_shows_health_queue_and_next_run(app: typer.Typer, schedule: Path, db_url: str) -> None:
    seed(db_url)
    common = ("--config", str(schedule), "--db", db_url)
    report = {r["source"]: r for r in json.loads(invoke(app, "status", *common, "--format", "json"))}
    assert report["reverb"]["health"] == "unhealthy" and "last 3 runs" in report["reverb"]["reasons"][0]
    assert report["reverb"]["open_flags"] == 1  # the dismissed flag is not in the queue
    assert report["matrixsynth"]["health"] == "unhealthy"
    assert "layout changed?" in report["matrixsynth"]["reasons"][0]
    assert report["matrixsynth"]["next_run_time"] is None and report["matrixsynth"]["job"] == "none"
    table = invoke(app, "status", *common)
    assert "unhealthy" in table and "Review queue: 1 open flags." in table


def test_bad_schedule_file_is_reported_with_its_line(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text("sources:\n  reverb: {enabled: true}\n", encoding="utf-8")
    output = invoke(app, "schedule", "list", "--config", str(path), code=2)
    assert f"{path}:2" in output and "give a `cron` expression or an `interval`" in output
