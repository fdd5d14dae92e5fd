"""Distributed crawling for real: `korgwatch worker` processes sharing scrapy-redis queues in the real Redis,
storing into the real PostgreSQL, crawling a loopback fixture site of a few hundred pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.distributed.harness import (
    PER_SOURCE,
    SOURCES,
    SwitchableProxy,
    Workers,
    clear_redis,
    fetches,
    korgwatch,
    listing_counts,
    make_site,
    private_redis,
    run_pages,
    runs_closed,
    through,
    wait_until,
    worker_pages,
    write_sources,
)
from sqlalchemy import Engine, select

from crawler.demo.site import FixtureSite, RunningSite, serve
from crawler.sources import load_sources
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import Appearance, CrawlRun, Flag, Instrument, Listing, Source
from korgwatch.commands.crawling import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

EXPECTED = PER_SOURCE * len(SOURCES)
CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture
def redis_clean(redis_url: str) -> Iterator[str]:
    clear_redis(redis_url)
    yield redis_url
    clear_redis(redis_url)


@pytest.fixture
def site() -> Iterator[RunningSite]:
    with serve(make_site()) as running:
        yield running


@pytest.fixture
def store(postgres_url: str) -> Iterator[Engine]:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def env(redis_clean: str, postgres_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KORGWATCH_REDIS_URL": redis_clean,
        "KORGWATCH_DB": postgres_url,
        "KORGWATCH_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def workers(tmp_path: Path, env: dict[str, str]) -> Iterator[Workers]:
    pool = Workers(tmp_path, env, write_sources(tmp_path))
    yield pool
    pool.close()


def enqueue(env: dict[str, str], workers: Workers, site: RunningSite, *extra: str) -> list[int]:
    result = korgwatch(
        "enqueue", *SOURCES, "--base-url", site.root, "--config", str(workers.sources_file), *extra, env=env
    )
    assert result.returncode == 0, result.stderr
    with session_scope(make_engine(env["KORGWATCH_DB"])) as session:
        open_runs = session.scalars(select(CrawlRun.id).where(CrawlRun.outcome.is_(None))).all()
    return sorted(open_runs)


def crawl_done(store: Engine, runs: list[int], workers: Workers, timeout: float = 180) -> None:
    wait_until(lambda: runs_closed(store, runs), timeout, f"runs {runs} to close\n{_logs(workers)}")


def _logs(workers: Workers) -> str:
    return "\n".join(f"--- {name}\n{workers.log(name)[-2000:]}" for name in workers.processes)


def test_two_workers_share_one_crawl(site: RunningSite, store: Engine, env: dict[str, str], workers: Workers) -> None:
    for name in ("w1", "w2"):
        workers.start(name)
    for name in ("w1", "w2"):
        workers.wait_ready(name)
    runs = enqueue(env, workers, site)
    crawl_done(store, runs, workers)

    assert listing_counts(store) == (EXPECTED, EXPECTED)  # every listing exactly once
    fetched = fetches(site)
    twice = {key: n for key, n in fetched.items() if n > 1}
    assert twice == {}, f"fetched more than once in one run: {list(twice)[:5]}"
    by_worker = wait_until(lambda: _settled(store, runs, sum(fetched.values())), 20, "the run ledger to settle")
    assert set(by_worker) == {"w1", "w2"} and all(pages > 0 for pages in by_worker.values()), by_worker
    assert sum(by_worker.values()) == sum(fetched.values()) == run_pages(store, runs)

    shown = korgwatch("runs", "--db", env["KORGWATCH_DB"], "--format", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert '"w1"' in shown.stdout and '"w2"' in shown.stdout
    for name in ("w1", "w2"):
        assert workers.stop(name) == 0  # SIGTERM: a clean stop
        assert "Traceback" not in workers.log(name)


def _settled(store: Engine, runs: list[int], pages: int) -> dict[str, int] | None:
    by_worker = worker_pages(store, runs)
    return by_worker if sum(by_worker.values()) == pages else None


def test_next_run_fetches_the_pages_again(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers
) -> None:
    """The duplicate filter is per run: the second run fetches the same pages, and stores nothing twice."""
    workers.start("w1")
    workers.wait_ready("w1")
    first = enqueue(env, workers, site)
    crawl_done(store, first, workers)
    after_first = fetches(site)
    assert set(after_first.values()) == {1}

    second = enqueue(env, workers, site, "--full")
    assert set(second).isdisjoint(first)
    crawl_done(store, second, workers)
    after_second = fetches(site)
    list_pages = [key for key in after_first if key[0].endswith(("/shop/", "/search/search"))]
    assert list_pages and all(after_second[key] == 2 for key in list_pages)
    assert listing_counts(store) == (EXPECTED, EXPECTED)
    with session_scope(store) as session:
        unchanged = session.scalars(select(CrawlRun.listings_unchanged).where(CrawlRun.id.in_(second))).all()
    assert sum(u or 0 for u in unchanged) > 0  # the second run saw them again, unchanged


def test_sigkilled_worker_loses_only_what_was_in_flight(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers
) -> None:
    site.inject("*/jp/auction/*", delay=1.0)  # detail pages slow enough to kill a worker mid-run
    site.inject("*/products/*", delay=1.0)
    for name in ("w1", "w2"):
        workers.start(name, "--peer-timeout", "5")
    for name in ("w1", "w2"):
        workers.wait_ready(name)
    first = enqueue(env, workers, site)
    wait_until(lambda: listing_counts(store)[0] >= 40, 120, "some listings to land")
    workers.kill("w1")
    crawl_done(store, first, workers)  # w2 finishes what is left in the shared queue
    stored, _ = listing_counts(store)
    assert stored <= EXPECTED
    lost = EXPECTED - stored
    # w1 had at most CONCURRENT_REQUESTS (16 per source when impolite) in flight, plus an unstored batch
    assert lost <= 2 * 16 + 2 * 50, lost

    with session_scope(store) as session:
        outcomes = session.scalars(select(CrawlRun.outcome).where(CrawlRun.id.in_(first))).all()
    assert "degraded" in outcomes, outcomes  # the loss is not hidden: the runs w1 worked on count it

    site.clear_faults()
    second = enqueue(env, workers, site)  # incremental, but a dead worker's source pages in full
    crawl_done(store, second, workers)
    assert listing_counts(store) == (EXPECTED, EXPECTED)  # the next run recovered them, nothing twice


def _outage_workers(workers: Workers, store_url: str, proxy: SwitchableProxy, *extra: str) -> None:
    """w1 and w2 storing through the switchable proxy; detail pages slow enough to cut the store mid-run."""
    for name in ("w1", "w2"):
        workers.start(name, *extra, env={"KORGWATCH_DB": through(proxy, store_url)})
    for name in ("w1", "w2"):
        workers.wait_ready(name)


def _slow_details(site: RunningSite, delay: float = 1.0) -> None:
    site.inject("*/jp/auction/*", delay=delay)
    site.inject("*/products/*", delay=delay)


def test_store_outage_makes_items_wait_and_retry(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers, postgres_url: str
) -> None:
    """PostgreSQL refusing connections for a few seconds: batches wait and land; nothing dropped, nothing twice."""
    proxy = SwitchableProxy(_server_of(postgres_url))
    proxy.up()
    try:
        _slow_details(site)
        _outage_workers(workers, postgres_url, proxy)
        runs = enqueue(env, workers, site)
        wait_until(lambda: listing_counts(store)[0] >= 40, 120, "some listings to land")
        proxy.down()
        time.sleep(4)
        assert all(p.poll() is None for p in workers.processes.values())  # waiting, not crashed
        proxy.up()
        crawl_done(store, runs, workers)
    finally:
        proxy.down()
    assert listing_counts(store) == (EXPECTED, EXPECTED)
    logs = workers.log("w1") + workers.log("w2")
    assert "store unavailable" in logs
    assert not list((Path(env["KORGWATCH_DATA_DIR"]) / "dead-letter").glob("*.jsonl"))


def test_store_outage_beyond_the_retries_goes_to_dead_letters(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers, postgres_url: str, tmp_path: Path
) -> None:
    """Past its retries a batch is written to a dead-letter file, never dropped; replay stores it."""
    dead = tmp_path / "dead"
    proxy = SwitchableProxy(_server_of(postgres_url))
    proxy.up()
    try:
        _slow_details(site)
        retries = ("-s", "KORGWATCH_STORE_RETRIES=1", "-s", "KORGWATCH_STORE_RETRY_BASE=0.2")
        _outage_workers(workers, postgres_url, proxy, *retries, "-s", f"KORGWATCH_DEAD_LETTER_DIR={dead}")
        runs = enqueue(env, workers, site)
        wait_until(lambda: listing_counts(store)[0] >= 40, 120, "some listings to land")
        proxy.down()
        wait_until(lambda: list(dead.glob("*.jsonl")), 60, "a dead-letter file")
        time.sleep(2)
        proxy.up()
        crawl_done(store, runs, workers)
    finally:
        proxy.down()
    stored, _ = listing_counts(store)
    assert stored < EXPECTED
    letters = [json.loads(line) for path in dead.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert letters and all(letter["error"].startswith("database error") for letter in letters)
    assert stored + len({(x["record"]["source"], x["record"]["external_id"]) for x in letters}) >= EXPECTED

    replayed = korgwatch("dead-letter", "replay", "--dir", str(dead), "--db", postgres_url, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert listing_counts(store) == (EXPECTED, EXPECTED)


def test_redis_restart_mid_run_makes_workers_wait_and_resume(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers, tmp_path: Path
) -> None:
    with private_redis(tmp_path / "redis") as switch:
        url = switch(True)
        redis_env = {**env, "KORGWATCH_REDIS_URL": url}
        workers.env = redis_env
        _slow_details(site)
        for name in ("w1", "w2"):
            workers.start(name)
        for name in ("w1", "w2"):
            workers.wait_ready(name)
        runs = enqueue(redis_env, workers, site)
        wait_until(lambda: listing_counts(store)[0] >= 40, 120, "some listings to land")
        switch(False)  # Redis restarts: SIGTERM, append-only file synced
        time.sleep(3)
        assert all(p.poll() is None for p in workers.processes.values())  # waiting, not crashed
        switch(True)
        crawl_done(store, runs, workers)
        assert listing_counts(store) == (EXPECTED, EXPECTED)
        logs = workers.log("w1") + workers.log("w2")
        assert "Redis unavailable" in logs and "Redis back" in logs
        for name in ("w1", "w2"):
            assert workers.stop(name) == 0


def test_two_processes_racing_on_one_serial_agree_on_the_first_sighting(
    store: Engine, env: dict[str, str], tmp_path: Path
) -> None:
    """Two `korgwatch ingest` processes store sightings of one serial at once: exactly one `new`."""
    files = []
    for writer in ("a", "b"):
        path = tmp_path / f"{writer}.jsonl"
        records = [
            {
                "source": f"dealer-{writer}",
                "url": f"https://{writer}.example/{i}",
                "external_id": f"{writer}{i}",
                "title": "Korg MS-10 s/n 135041",
                "seller": f"seller-{writer}-{i}",
                "posted_at": f"2026-0{1 + i % 9}-1{i % 10}T12:00:00Z",
            }
            for i in range(300)
        ]
        path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
        files.append(path)
    argv = [sys.executable, "-m", "korgwatch.cli", "ingest"]
    processes = [
        subprocess.Popen([*argv, str(path), "--db", env["KORGWATCH_DB"], "--batch-size", "20"], env=env)
        for path in files
    ]
    assert [p.wait(timeout=180) for p in processes] == [0, 0]
    with session_scope(store) as session:
        kinds = Counter(
            session.scalars(
                select(Appearance.kind)
                .join(Instrument)
                .where(Instrument.model == "MS-10", Instrument.serial == "135041")
            )
        )
    assert sum(kinds.values()) == 600
    assert kinds["new"] == 1, kinds


def test_distributed_crawl_matches_a_single_process_crawl(
    env: dict[str, str], tmp_path: Path, store: Engine, sqlite_url: str
) -> None:
    """`enqueue --all` and two workers into PostgreSQL store what `crawl --all` stores into SQLite."""
    demo_env = {**env, "EBAY_CLIENT_ID": DEMO_CLIENT_ID, "EBAY_CLIENT_SECRET": DEMO_CLIENT_SECRET}
    pool = Workers(tmp_path, demo_env, CONFIG / "sources.yaml")
    names = tuple(s.name for s in load_sources(CONFIG / "sources.yaml").enabled())
    try:
        with serve(FixtureSite()) as running:
            single = korgwatch(
                "crawl", "--all", "--base-url", running.root, "--impolite", "--db", sqlite_url, "--no-progress",
                env=demo_env, timeout=300,
            )
            assert single.returncode == 0, single.stderr
            for name in ("w1", "w2"):
                pool.start(name, sources=names)
            for name in ("w1", "w2"):
                pool.wait_ready(name)
            runs = enqueue(demo_env, pool, running, "--all")
            crawl_done(store, runs, pool)
    finally:
        pool.close()
    sqlite_engine = make_engine(sqlite_url)
    try:
        assert _stored(store) == _stored(sqlite_engine)
    finally:
        sqlite_engine.dispose()


def _stored(engine: Engine) -> dict[str, Any]:
    """What a crawl leaves in the store, independent of ids and times."""
    with session_scope(engine) as session:
        listings = session.execute(
            select(Source.name, Listing.external_id, Listing.title, Listing.seller, Listing.price).join(Source)
        ).all()
        appearances = session.execute(
            select(Source.name, Listing.external_id, Instrument.model, Instrument.serial, Appearance.kind)
            .join(Listing, Listing.id == Appearance.listing_id)
            .join(Source, Source.id == Listing.source_id)
            .join(Instrument, Instrument.id == Appearance.instrument_id)
        ).all()
        flags = session.execute(
            select(Source.name, Listing.external_id, Flag.code)
            .join(Listing, Listing.id == Flag.listing_id)
            .join(Source, Source.id == Listing.source_id)
        ).all()
    return {
        "listings": sorted(tuple(map(str, row)) for row in listings),
        "appearances": sorted(tuple(map(str, row)) for row in appearances),
        "flags": sorted(tuple(map(str, row)) for row in flags),
    }


def _server_of(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def test_a_run_whose_start_message_redis_lost_is_closed_with_the_reason(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers
) -> None:
    """Redis restarted without its data: the run it held is not left `running` for ever."""
    runs = enqueue(env, workers, site)
    clear_redis(env["KORGWATCH_REDIS_URL"])  # the start messages are gone
    workers.start("w1", "--peer-timeout", "1")
    crawl_done(store, runs, workers, timeout=60)
    with session_scope(store) as session:
        closed = session.execute(select(CrawlRun.outcome, CrawlRun.log_tail).where(CrawlRun.id.in_(runs))).all()
    assert {outcome for outcome, _ in closed} == {"failed"}
    assert all("start message was lost" in (tail or "") for _, tail in closed), closed
