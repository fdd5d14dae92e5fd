"""Distributed crawling for real: `korgwatch worker` processes sharing scrapy-redis queues in the real Redis,
storing into the real PostgreSQL, crawling a loopback fixture site of a few hundred pages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.distributed.harness import (
    PER_SOURCE,
    SOURCES,
    Workers,
    clear_redis,
    fetches,
    korgwatch,
    listing_counts,
    make_site,
    run_pages,
    runs_closed,
    wait_until,
    worker_pages,
    write_sources,
)
from sqlalchemy import Engine, select

from crawler.demo.site import RunningSite, serve
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import CrawlRun

EXPECTED = PER_SOURCE * len(SOURCES)


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
