"""Distributed crawl throughput: one and two `korgwatch worker` processes beside one process, same pages.

A loopback fixture site serves N dealer product pages (as `bench_crawl.py` does). In the same run it measures:
the bare Scrapy spider (fetch + parse, nothing stored: the baseline), the single-process full crawl into SQLite
(`korgwatch crawl`), and a distributed run (`enqueue` + K workers sharing scrapy-redis queues in Redis, storing
into PostgreSQL) with K = 1 and K = 2. A distributed run is timed from its enqueue to its close in the store
(workers started and waiting beforehand). Needs the real PostgreSQL and Redis; the database named by --db is
created fresh for each distributed run and dropped at the end, and the Redis database named by --redis is
flushed, so point both at scratch databases.

    .venv/bin/python benchmarks/bench_workers.py                # N = 2,000
    .venv/bin/python benchmarks/bench_workers.py -n 500 --workers 1 2 3
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench_ingest_postgres import drop_database, recreate_database  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.bench_crawl import LIST_PAGE_SIZE, _list_url, spawn  # noqa: E402

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/kw_bench_workers"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"


def sources_file(workdir: Path, n: int) -> Path:
    from crawler.demo.render import DEALER_HOST

    path = workdir / "sources.yaml"
    path.write_text(
        "contact_url: https://korgwatch.example/contact\n"
        "sources:\n"
        "  jsonld:\n"
        "    enabled: true\n"
        f"    pages: ['{_list_url(DEALER_HOST)}']\n"
        f"    page_limit: {n}\n"
        "    date_sorted: false\n"
        "    timeout: 0\n",
        encoding="utf-8",
    )
    return path


def run_distributed(base_url: str, n: int, workers: int, db_url: str, redis_url: str, workdir: Path) -> dict[str, Any]:
    """K workers waiting, one run enqueued; seconds from enqueue to the run's close, pages from the store."""
    import redis
    from sqlalchemy import select

    from crawler.distributed.enqueue import enqueue_runs
    from db.engine import make_engine, session_scope
    from db.migrate import upgrade
    from db.models import CrawlRun

    workdir.mkdir(parents=True, exist_ok=True)
    recreate_database(make_url(db_url))
    upgrade(db_url)
    redis.Redis.from_url(redis_url).flushdb()
    config = sources_file(workdir, n)
    env = dict(os.environ, KORGWATCH_DATA_DIR=str(workdir / "data"))
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    for i in range(workers):
        log = workdir / f"w{i + 1}.log"
        argv = [sys.executable, "-m", "korgwatch.cli", "worker", "--sources", "jsonld", "--config", str(config)]
        argv += ["--impolite", "--name", f"w{i + 1}", "--db", db_url, "--redis", redis_url, "--log-level", "ERROR"]
        argv += ["--report-every", "0.5", "-s", "CLOSESPIDER_TIMEOUT=0"]
        with log.open("wb") as out:
            processes.append((subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT), log))
    engine = make_engine(db_url)
    try:
        _wait_ready(redis_url, [f"w{i + 1}" for i in range(workers)])
        started = time.perf_counter()
        (run,) = enqueue_runs(redis_url, db_url, ["jsonld"], base_urls={"jsonld": base_url}, full=True)
        while True:
            with session_scope(engine) as session:
                row = session.execute(select(CrawlRun).where(CrawlRun.id == run.run)).scalar_one()
                if row.outcome is not None:
                    elapsed = time.perf_counter() - started
                    pages, listings, outcome = row.pages, row.listings_new, row.outcome
                    break
            if time.perf_counter() - started > 1800:
                raise SystemExit(f"run {run.run} did not close within 30 minutes; see {workdir}")
            time.sleep(0.1)
        time.sleep(2)  # the last counts land after the close; take them from the store again
        with session_scope(engine) as session:
            pages = session.execute(select(CrawlRun.pages).where(CrawlRun.id == run.run)).scalar_one()
    finally:
        for process, _ in processes:
            process.send_signal(signal.SIGTERM)
        for process, _ in processes:
            process.wait(timeout=120)
        engine.dispose()
    return {"pages": pages, "seconds": elapsed, "listings_new": listings, "outcome": outcome}


def _wait_ready(redis_url: str, names: list[str]) -> None:
    """A worker is ready once it has marked itself in its source's busy hash (its first poll of Redis)."""
    import redis

    from crawler.distributed.keys import busy_key

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(client.hexists(busy_key("jsonld"), name) for name in names):
            return
        time.sleep(0.2)
    raise SystemExit("workers did not start within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="product pages to serve and crawl (default 2000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    parser.add_argument("--db", default=DEFAULT_DB, help="scratch PostgreSQL database (recreated)")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="scratch Redis database (flushed)")
    args = parser.parse_args()

    from crawler.demo.site import FixtureSite, generate_listings, serve

    site = FixtureSite({"jsonld": generate_listings("jsonld", args.n)}, max_page_size={"jsonld": LIST_PAGE_SIZE})
    results: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="kw-bench-") as tmp, serve(site) as running:
        base_url = running.base_url("jsonld")
        results.append(("bare spider (fetch + parse, baseline)", spawn("bare", base_url, args.n, Path(tmp) / "bare")))
        results.append(("one process, SQLite (korgwatch crawl)", spawn("full", base_url, args.n, Path(tmp) / "full")))
        try:
            for k in args.workers:
                result = run_distributed(base_url, args.n, k, args.db, args.redis, Path(tmp) / f"workers{k}")
                results.append((f"{k} worker{'s' if k > 1 else ''}, Redis + PostgreSQL", result))
        finally:
            drop_database(make_url(args.db))
    baseline = results[0][1]["pages"] / results[0][1]["seconds"]
    print(f"pages served: {args.n} product pages + {-(-args.n // LIST_PAGE_SIZE)} list pages; {os.cpu_count()} cores")
    for label, result in results:
        rate = result["pages"] / result["seconds"]
        print(
            f"{label:<42} {result['pages']:6d} pages in {result['seconds']:6.1f} s = {rate:7.1f} pages/s"
            f"  ({rate / baseline:.2f} of baseline)"
        )


if __name__ == "__main__":
    main()
