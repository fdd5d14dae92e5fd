"""Review page latency at a million listings: each page requested --requests times in-process, beside a bare
baseline in the same run. Issue 14's target 3: every page under 100 ms at the 95th percentile.

The store is `big_store(n)` (built once by the project's own generator and kept: benchmarks/big_store.py). The
decisions write, so every run works on a scratch copy of the kept store, which stays as built. Pages, requested
through Starlette's TestClient (the whole app: middleware, CSRF, templates), each request timed alone:
- queue: the first page of open flags; deep: a page from the middle of the open flags (a keyset cursor);
- listing: a different listing with an open flag each time; model: MS-20 (the most sighted model);
- decision: POST confirm, on a different open flag each time (the 303 answer, not the page it points to).
Baselines, raw sqlite3 on the same file: what any such page must read at least, by the same indexes:
- queue / deep: the page's 51 flags joined to their listings (keyset on ix_flags_status_created_at);
- listing: the listing row, its flags and its appearances;
- model: the serial of every instrument of the model (the unique index on model, serial, unit);
- decision: one UPDATE of the flag's status and a commit.
Requests and baselines alternate (A B A B …); figures are p50 / p95 / max in milliseconds of wall clock, and the
median CPU milliseconds (cpu50) the process spent, which a loaded machine does not inflate.
Run: .venv/bin/python benchmarks/bench_review_pages.py            (1,000,000 listings)
     .venv/bin/python benchmarks/bench_review_pages.py --n 20000  (a small run)
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

from big_store import bench_dir, big_store, scratch_copy
from starlette.testclient import TestClient

from db.engine import make_engine
from korgwatch.paths import config_dir
from pipeline.rules import load_rules
from review.app import ReviewConfig, create_app

MODEL = "MS-20"
WARMUP = 3
CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: p95 of 50 samples is the 48th smallest."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds of one call (CPU: this process's, the app's thread included), so that a
    loaded machine's waiting shows as the gap between the two."""
    started, cpu = time.perf_counter(), time.process_time()
    run()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


class Baselines:
    """The bare reads and writes, raw sqlite3 on the store (WAL, as korgwatch opens it)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA cache_size = -65536")  # korgwatch's own setting (db/engine.py)

    def queue(self, after: tuple[str, int] | None) -> list[Any]:
        where, params = "f.status = 'open'", []
        if after is not None:
            where += " AND (f.created_at < ? OR (f.created_at = ? AND f.id < ?))"
            params = [after[0], after[0], after[1]]
        return self.conn.execute(
            "SELECT f.id, f.created_at, f.code, f.details, l.id, l.title, l.url FROM flags f"
            f" JOIN listings l ON l.id = f.listing_id WHERE {where} ORDER BY f.created_at DESC, f.id DESC LIMIT 51",
            params,
        ).fetchall()

    def listing(self, listing_id: int) -> list[Any]:
        rows = self.conn.execute("SELECT * FROM listings WHERE id = ?", (listing_id,)).fetchall()
        rows += self.conn.execute("SELECT * FROM flags WHERE listing_id = ?", (listing_id,)).fetchall()
        return rows + self.conn.execute("SELECT * FROM appearances WHERE listing_id = ?", (listing_id,)).fetchall()

    def model(self, model: str) -> list[Any]:
        return self.conn.execute("SELECT serial FROM instruments WHERE model = ?", (model,)).fetchall()

    def decide(self, flag_id: int) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "UPDATE flags SET status = 'confirmed', reviewer = 'bench', decided_at = datetime('now') WHERE id = ?",
            (flag_id,),
        )
        self.conn.execute("COMMIT")


def open_flags(path: Path, count: int) -> tuple[list[tuple[int, int]], tuple[str, int], int]:
    """`count` open flags spread over the queue as (flag, listing), the cursor of the middle one, and how many."""
    with closing(sqlite3.connect(path)) as conn:
        total = conn.execute("SELECT count(*) FROM flags WHERE status = 'open'").fetchone()[0]
        step = max(1, total // (count + 1))
        rows = conn.execute(
            "SELECT id, listing_id, created_at FROM flags WHERE status = 'open' ORDER BY created_at DESC, id DESC"
        ).fetchall()
    picked = [(r[0], r[1]) for r in rows[step::step]][:count]
    middle = rows[len(rows) // 2]
    return picked, (middle[2], middle[0]), total


def cursor_token(created_at: str, flag_id: int) -> str:
    from datetime import UTC, datetime

    from review.queries import encode_cursor

    return encode_cursor(datetime.fromisoformat(created_at).replace(tzinfo=UTC), flag_id)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} {percentile(values, 0.95):7.1f} {max(values):7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="listings in the store (default 1,000,000)")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page (default 50)")
    args = parser.parse_args()
    kept = big_store(args.n)
    rules = load_rules(config_dir())
    with tempfile.TemporaryDirectory(dir=bench_dir()) as tmp:
        path = scratch_copy(args.n, Path(tmp))  # the decisions write: the kept store stays as built
        flags, middle, total = open_flags(path, 2 * (args.requests + WARMUP))
        app_flags, raw_flags = flags[0::2], flags[1::2]
        engine = make_engine(f"sqlite:///{path}")
        client = TestClient(create_app(ReviewConfig(f"sqlite:///{path}", rules, reviewer="bench"), engine=engine))
        first = client.get("/")
        match = CSRF.search(first.text)
        if first.status_code != 200 or not match:
            raise SystemExit(f"the queue page did not load: {first.status_code}")
        csrf = match.group(1)
        deep = f"/?after={cursor_token(*middle)}"
        base = Baselines(path)
        sizes: dict[str, int] = {}

        def get(url: str, name: str) -> Callable[[], Any]:
            def run() -> None:
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code}")
                sizes[name] = len(response.content)

            return run

        def post(flag_id: int) -> Callable[[], Any]:
            def run() -> None:
                response = client.post(
                    f"/flags/{flag_id}/confirm", data={"csrf": csrf, "next": "/"}, follow_redirects=False
                )
                if response.status_code != 303:
                    raise SystemExit(f"confirm flag {flag_id}: {response.status_code}")

            return run

        rounds = args.requests + WARMUP
        pages: dict[str, list[tuple[Callable[[], Any], Callable[[], Any]]]] = {
            "queue, first page": [(get("/", "queue, first page"), lambda: base.queue(None))] * rounds,
            "queue, deep page": [(get(deep, "queue, deep page"), lambda: base.queue(middle))] * rounds,
            "listing": [(get(f"/listing/{lid}", "listing"), partial(base.listing, lid)) for _, lid in app_flags],
            f"model ({MODEL})": [(get(f"/models/{MODEL}", f"model ({MODEL})"), lambda: base.model(MODEL))] * rounds,
            "decision (POST confirm)": [
                (post(fid), partial(base.decide, raw)) for (fid, _), (raw, _) in zip(app_flags, raw_flags, strict=True)
            ],
        }
        results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pages}
        cpu: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pages}
        for i in range(args.requests + WARMUP):
            for name, runs in pages.items():
                page, bare = runs[i]
                page_ms, page_cpu = timed(page)
                bare_ms, bare_cpu = timed(bare)
                if i >= WARMUP:
                    results[name][0].append(page_ms)
                    results[name][1].append(bare_ms)
                    cpu[name][0].append(page_cpu)
                    cpu[name][1].append(bare_cpu)
        client.close()
        engine.dispose()
        base.conn.close()
    print(f"store: {args.n:,} listings, {total:,} open flags ({kept})")
    print(f"{args.requests} requests per page after {WARMUP} warm-up ones, page and baseline alternating; ms")
    columns = f"{'p50':>7} {'p95':>7} {'max':>7} {'cpu50':>6}"
    print(f"{'page':<26} {columns}   {'baseline':<12} {columns}  size")
    for name, (page_times, bare_times) in results.items():
        size = sizes.get(name, 0)
        page_cpu, bare_cpu = statistics.median(cpu[name][0]), statistics.median(cpu[name][1])
        print(
            f"{name:<26} {summary(page_times)} {page_cpu:6.1f}   {'raw sqlite3':<12}"
            f" {summary(bare_times)} {bare_cpu:6.1f}  {size / 1024:,.0f} KB"
        )
    worst = max(percentile(times, 0.95) for times, _ in results.values())
    print(f"slowest p95: {worst:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
