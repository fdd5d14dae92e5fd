"""Issue 17.10: on SQLite, readers never wait for a writer, and a writer that cannot get the lock in time says
so in one line instead of a traceback.

Another process's write transaction is held open (BEGIN IMMEDIATE through the sqlite3 module, as any other
writer would) while korgwatch reads and crawls; the busy timeout is shortened through
KORGWATCH_SQLITE_BUSY_TIMEOUT so that waiting in vain ends quickly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from test_crawl_support import REPO_ROOT, loopback_site, mount_samples, write_sources

from db.engine import make_engine, read_scope, session_scope, store_locked
from db.migrate import upgrade
from db.models import CrawlRun, Source

BUSY = "0.3"


@pytest.fixture
def locked_store(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated SQLite store whose write lock another connection holds, mid-transaction, for the test."""
    upgrade(sqlite_url)
    monkeypatch.setenv("KORGWATCH_SQLITE_BUSY_TIMEOUT", BUSY)
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO sources (name) VALUES ('written-but-not-committed')")
    try:
        yield sqlite_url
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_read_runs_beside_a_writer_and_a_write_still_waits_for_it(locked_store: str) -> None:
    engine = make_engine(locked_store)
    try:
        with read_scope(engine) as session:  # a WAL snapshot: the writer's uncommitted row is not in it
            assert session.scalar(select(func.count()).select_from(Source)) == 0
        with pytest.raises(OperationalError) as refused, session_scope(engine) as session:
            session.add(Source(name="second-writer"))
        assert store_locked(refused.value)
    finally:
        engine.dispose()


def test_the_runs_command_answers_while_a_writer_holds_the_lock(locked_store: str) -> None:
    env = {**os.environ, "KORGWATCH_SQLITE_BUSY_TIMEOUT": BUSY}
    done = subprocess.run(
        [sys.executable, "-m", "korgwatch.cli", "runs", "--db", locked_store, "--format", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    "command",
    [["queue", "-f", "json"], ["history", "145201", "-f", "json"], ["export", "--since", "2020-01-01", "-f", "json"],
     ["stats", "-f", "json"]],
    ids=lambda command: command[0],
)
def test_the_read_commands_answer_while_a_writer_holds_the_lock(locked_store: str, command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "korgwatch.cli", *command, "--db", locked_store],
        cwd=REPO_ROOT,
        env={**os.environ, "KORGWATCH_SQLITE_BUSY_TIMEOUT": BUSY},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), (list, dict))


def test_the_review_page_answers_while_a_writer_holds_the_lock(locked_store: str) -> None:
    from starlette.testclient import TestClient

    from pipeline.rules import load_rules
    from review.app import ReviewConfig, create_app

    config = ReviewConfig(db_url=locked_store, rules=load_rules(REPO_ROOT / "config"), reviewer="tester", token=None,
                          allowed_hosts=None)
    with TestClient(create_app(config)) as client:
        for page in ("/", "/models", "/models/MS-20"):
            assert client.get(page).status_code == 200, page


@pytest.mark.parametrize(
    "command",
    [["-m", "crawler.run", "--no-progress"], ["-m", "korgwatch.commands.crawling", "crawl", "--no-progress"]],
    ids=["python -m crawler.run", "korgwatch crawl"],
)
def test_a_crawl_meeting_a_locked_store_says_so_in_one_line(
    tmp_path: Path, locked_store: str, command: list[str]
) -> None:
    with loopback_site() as site:
        mount_samples(site)
        config = write_sources(tmp_path / "sources.yaml", site)
        env = {**os.environ, "KORGWATCH_SQLITE_BUSY_TIMEOUT": BUSY, "KORGWATCH_DATA_DIR": str(tmp_path / "data")}
        argv = [sys.executable, *command, "matrixsynth", "--config", str(config), "--db", locked_store, "--impolite"]
        done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "the store is locked by another writer (waited 0.3 s)" in last
    assert site.requests("/matrixsynth/") == []  # nothing crawled that could not be stored
    engine = make_engine(locked_store)
    try:
        with read_scope(engine) as session:
            assert session.scalar(select(func.count()).select_from(CrawlRun)) == 0
    finally:
        engine.dispose()
