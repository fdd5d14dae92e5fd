"""Issue 17.2: a worker SIGKILLed and restarted under the same `--name` (what `Restart=always` with a fixed name
does) is a new worker: its busy mark is keyed by name plus a start nonce, so the dead one's mark goes stale, its
loss is noticed (the runs close `degraded` and are marked incomplete in the store) and the next run pages in
full to recover what it had in flight. Real Redis and PostgreSQL, real worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.distributed.harness import (
    Workers,
    listing_counts,
    make_site,
    private_redis,
    wait_until,
    write_sources,
)
from sqlalchemy import Engine, func, select
from test_distributed import EXPECTED, crawl_done, enqueue

from crawler.demo.site import RunningSite, serve
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import CrawlRun, CrawlRunWorker


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
def env(redis_url: str, postgres_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private redis-server (other sessions use the machine's Redis at the same time) and PostgreSQL."""
    del redis_url  # Redis tests run only where Redis is configured
    with private_redis(tmp_path / "redis") as switch:
        yield {
            **os.environ,
            "KORGWATCH_REDIS_URL": switch(True),
            "KORGWATCH_DB": postgres_url,
            "KORGWATCH_DATA_DIR": str(tmp_path / "data"),
            "PYTHONUNBUFFERED": "1",
        }


@pytest.fixture
def workers(tmp_path: Path, env: dict[str, str]) -> Iterator[Workers]:
    pool = Workers(tmp_path, env, write_sources(tmp_path))
    yield pool
    pool.close()


def test_a_worker_restarted_under_its_own_name_does_not_hide_its_predecessors_death(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers
) -> None:
    site.inject("*/jp/auction/*", delay=1.0)  # detail pages slow enough to kill the worker with some in flight
    site.inject("*/products/*", delay=1.0)
    workers.start("w1", "--peer-timeout", "3")
    workers.wait_ready("w1")
    first = enqueue(env, workers, site)
    wait_until(lambda: listing_counts(store)[0] >= 40, 120, "some listings to land")
    workers.kill("w1")
    workers.start("w1", "--peer-timeout", "3")  # the same name again, at once
    workers.wait_ready("w1")
    crawl_done(store, first, workers)
    with session_scope(store) as session:
        closed = session.execute(select(CrawlRun.outcome, CrawlRun.incomplete).where(CrawlRun.id.in_(first))).all()
    assert ("degraded", True) in [tuple(row) for row in closed], closed  # the death was noticed
    assert "taken for dead" in workers.log("w1")

    site.clear_faults()
    second = enqueue(env, workers, site)  # the lost runs make this one page in full
    crawl_done(store, second, workers)
    assert listing_counts(store) == (EXPECTED, EXPECTED)  # recovered, nothing twice


def test_a_killed_workers_counts_match_what_it_stored(
    site: RunningSite, store: Engine, env: dict[str, str], workers: Workers
) -> None:
    """The counts go into the store with the listings (one transaction), not with the next report: a worker
    killed between the two leaves its run counting every listing it stored."""
    site.inject("*/jp/auction/*", delay=1.0)
    site.inject("*/products/*", delay=1.0)
    workers.start("w1", "--peer-timeout", "3", "--report-every", "3600")  # no report before the kill
    workers.wait_ready("w1")
    first = enqueue(env, workers, site)
    wait_until(lambda: listing_counts(store)[0] >= 20, 120, "some listings to land")
    workers.kill("w1")
    stored = listing_counts(store)[0]
    with session_scope(store) as session:
        counted = session.scalar(
            select(func.sum(CrawlRunWorker.listings_new)).where(CrawlRunWorker.crawl_run_id.in_(first))
        )
        totals = session.scalar(select(func.sum(CrawlRun.listings_new)).where(CrawlRun.id.in_(first)))
    assert counted == totals == stored
