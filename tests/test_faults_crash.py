"""Issue 17.1 and 17.3: a crawl killed with SIGKILL mid-way, and two crawls of one source at once.

A real `python -m crawler.run` subprocess crawls the loopback site; the feed's second page is held open until
the test has killed the crawl by its pid, so the kill always lands after page 1's listings are stored and
before page 2's. The next crawl must find the run left open, close it `interrupted`, and page in full to store
what the killed run never reached.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_crawl_support import (
    ATOM,
    REPO_ROOT,
    LoopbackSite,
    loopback_site,
    mount_samples,
    run_crawl,
    sample,
    write_sources,
)
from werkzeug import Request, Response

from db.engine import make_engine, session_scope
from db.models import CrawlRun, Listing

FEED = "/matrixsynth/feeds/posts/default"
WAIT = 60.0


class HeldPage:
    """The feed's last page, answered only once `release` is set; `reached` says a crawl asked for it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, _request: Request) -> Response:
        self.reached.set()
        self.release.wait(WAIT)
        return Response(sample("matrixsynth/feed_posts_default_page2_last.atom.xml"), content_type=ATOM)


@contextmanager
def held_loopback() -> Iterator[tuple[LoopbackSite, HeldPage]]:
    """The loopback site with matrixsynth's last page held (released at the end whatever happens)."""
    held = HeldPage()
    with loopback_site() as site:
        mount_samples(site)
        site.route(FEED, held, when=lambda q: q.get("start-index") == "4")
        try:
            yield site, held
        finally:
            held.release.set()


@pytest.fixture
def held_site() -> Iterator[tuple[LoopbackSite, HeldPage]]:
    with held_loopback() as site_and_page:
        yield site_and_page


def start_crawl(tmp_path: Path, config: Path, db_url: str, name: str) -> subprocess.Popen[str]:
    """The crawl as its own process, storing every listing at once (batches of one)."""
    env = {**os.environ, "KORGWATCH_DATA_DIR": str(tmp_path / "data")}
    argv = [sys.executable, "-m", "crawler.run", "matrixsynth", "--config", str(config), "--db", db_url]
    argv += ["--no-progress", "--impolite", "--json", str(tmp_path / f"{name}.json")]
    argv += ["--set", "KORGWATCH_BATCH_SIZE=1", "--set", "LOG_LEVEL=INFO"]
    log = (tmp_path / f"{name}.stderr.txt").open("w")
    return subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=log, text=True)


def wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


def listings(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            return int(session.scalar(select(func.count()).select_from(Listing)) or 0)
    finally:
        engine.dispose()


def runs(db_url: str) -> list[tuple[int, str | None, bool, bool]]:
    """(id, outcome, paged_in_full, incomplete) of every run, oldest first."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            rows = session.execute(
                select(CrawlRun.id, CrawlRun.outcome, CrawlRun.paged_in_full, CrawlRun.incomplete).order_by(CrawlRun.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def kill_after_first_page(tmp_path: Path, site: LoopbackSite, held: HeldPage, db_url: str) -> Path:
    """Start a crawl, let it store page 1, SIGKILL it by pid while it waits for page 2; the config path."""
    config = write_sources(tmp_path / "sources.yaml", site)
    crawl = start_crawl(tmp_path, config, db_url, "killed")
    try:
        wait_for(held.reached.is_set, "the crawl to ask for page 2")
        wait_for(lambda: listings(db_url) >= 3, "page 1's listings in the store")
    finally:
        os.kill(crawl.pid, signal.SIGKILL)
        crawl.wait(WAIT)
    held.release.set()
    return config


def test_a_run_killed_mid_way_is_closed_interrupted_and_the_next_crawl_recovers_it(
    tmp_path: Path, held_site: tuple[LoopbackSite, HeldPage], sqlite_url: str
) -> None:
    site, held = held_site
    with loopback_site() as whole_site:  # what an uninterrupted crawl stores, for comparison
        mount_samples(whole_site)
        reference = f"sqlite:///{tmp_path / 'reference.sqlite'}"
        run_crawl(tmp_path, ["matrixsynth"], write_sources(tmp_path / "ref.yaml", whole_site), reference, name="ref")
    expected = listings(reference)

    config = kill_after_first_page(tmp_path, site, held, sqlite_url)
    stored_before = listings(sqlite_url)
    assert 0 < stored_before < expected
    assert [(outcome, full) for _, outcome, full, _ in runs(sqlite_url)] == [(None, False)]  # recorded at its start

    again = run_crawl(tmp_path, ["matrixsynth"], config, sqlite_url, "--impolite", name="again")
    assert again.returncode == 0, again.stderr[-3000:]
    assert listings(sqlite_url) == expected  # paged past the known listings to what the killed run missed
    (first, outcome, _, incomplete), (second, outcome2, full2, incomplete2) = runs(sqlite_url)
    assert (outcome, incomplete) == ("interrupted", True)
    assert (outcome2, full2, incomplete2) == ("ok", True, False)
    assert f"run {first} was left open" in again.stderr

    third = run_crawl(tmp_path, ["matrixsynth"], config, sqlite_url, "--impolite", name="third")
    assert third.returncode == 0, third.stderr[-3000:]
    assert runs(sqlite_url)[-1][1:] == ("ok", False, False)  # recovered: incremental again
    assert second < runs(sqlite_url)[-1][0]


def test_a_second_crawl_of_a_running_source_is_refused_by_the_lease_in_the_database(
    tmp_path: Path, held_site: tuple[LoopbackSite, HeldPage], sqlite_url: str
) -> None:
    site, held = held_site
    config = write_sources(tmp_path / "sources.yaml", site)
    first = start_crawl(tmp_path, config, sqlite_url, "first")
    try:
        wait_for(held.reached.is_set, "the first crawl to ask for page 2")
        pages_before = len(site.requests("/matrixsynth/"))
        second = run_crawl(tmp_path, ["matrixsynth"], config, sqlite_url, "--impolite", name="second")
        assert second.returncode == 1
        assert second.runs["matrixsynth"]["outcome"] == "busy"
        assert f"process {socket_host()}:{first.pid}:" in second.runs["matrixsynth"]["messages"][0]
        assert len(site.requests("/matrixsynth/")) == pages_before  # the second crawl fetched nothing
    finally:
        held.release.set()
        first.wait(WAIT)
    assert first.returncode == 0
    assert [outcome for _, outcome, _, _ in runs(sqlite_url)] == ["ok"]


def socket_host() -> str:
    import socket

    return socket.gethostname()
