"""Crawl throughput: the full crawl (spider + analyser + store) against a bare Scrapy spider, same pages.

A loopback fixture site serves N generated dealer product pages (schema.org JSON-LD, reached through ItemList
list pages, as `crawler/spiders/jsonld.py` crawls them). Both crawls run with politeness off (no delay, no
AutoThrottle, no robots.txt), each in its own subprocess (Twisted's reactor runs once per process), and each
times its crawl only, not interpreter start-up or schema creation. The bare spider fetches and parses the same
pages with the same extractor and stores nothing; the ratio full/bare is the cost of analysing and storing.

A share of the listings (WRONG_SHARE, about the share of wrong serials the register keeper notes) carry a serial
of another model's block, in title, body and schema.org data alike, so the full crawl raises flags and the flag
path (its messages, suggestions and rows) is measured too. Each crawl reports its wall clock and the CPU time of
its process and any children per page: on a shared machine the wall clock counts other processes' turns, the
CPU time does not. The two crawls alternate over the rounds (bare full, full bare, ...), each round into a
fresh store, and each figure is printed as min / median / max.

    .venv/bin/python benchmarks/bench_crawl.py                  # N = 5,000, 3 rounds
    .venv/bin/python benchmarks/bench_crawl.py -n 500 --rounds 2  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

LIST_PAGE_SIZE = 100
TARGET_RATIO = 0.7
WRONG_SHARE = 0.15
# Prefixes of other models' blocks: a serial made of one of these and the listing's digits fits another model.
WRONG_PREFIXES = ("73", "18", "45", "22", "60")


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (user and system)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def with_wrong_serials(listings: list[dict[str, Any]], share: float = WRONG_SHARE, seed: int = 14) -> int:
    """Give `share` of the listings a six-digit serial that fits none of their model's blocks, everywhere the
    serial is written (title, body, schema.org data); returns how many were changed."""
    from pipeline.analyse import analyse_listing
    from pipeline.rules import load_rules

    rules = load_rules(REPO_ROOT / "config")

    def flagged(model: str, serial: str) -> bool:
        return any(i.flagged for i in analyse_listing(f"Korg {model} SN {serial}", "", rules).instruments)

    rng = random.Random(seed)
    changed = 0
    for listing in listings:
        if rng.random() >= share or not listing.get("serial"):
            continue
        serial = listing["serial"]
        wrong = next(
            candidate
            for prefix in rng.sample(WRONG_PREFIXES, len(WRONG_PREFIXES))
            for candidate in [prefix + serial[-4:]]
            if flagged(listing["model"], candidate)
        )
        for key in ("title", "body"):
            listing[key] = listing[key].replace(serial, wrong)
        listing["serial"] = wrong
        changed += 1
    return changed


def _list_url(host: str) -> str:
    return f"{host}/shop/?per_page={LIST_PAGE_SIZE}"


def run_full(base_url: str, n: int, workdir: Path) -> dict[str, Any]:
    """The real thing: `crawler.run.run_crawls` for the jsonld source, into a fresh SQLite file."""
    from crawler.demo.render import DEALER_HOST
    from crawler.run import CrawlOptions, run_crawls
    from db.migrate import upgrade

    workdir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{workdir / 'bench.sqlite'}"
    upgrade(db_url)  # schema creation is set-up, not crawling
    options = CrawlOptions(
        sources=["jsonld"],
        db_url=db_url,
        base_urls={"jsonld": base_url},
        evidence_dir=workdir / "evidence",
        photo_dir=workdir / "photos",  # the first four generated listings show a photo each
        polite=False,
        progress=False,
        settings={"LOG_LEVEL": "ERROR", "CLOSESPIDER_TIMEOUT": 0},
        source_overrides={"jsonld": {"pages": (_list_url(DEALER_HOST),), "page_limit": n, "timeout": 0.0}},
    )
    started, cpu_started = time.perf_counter(), cpu_seconds()
    (run,) = run_crawls(options)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    return {
        "pages": run.pages,
        "seconds": elapsed,
        "cpu": cpu,
        "listings_new": run.listings_new,
        "flags": run.flags_raised,
        "outcome": run.outcome,
        "errors": run.errors,
    }


def run_bare(base_url: str, n: int) -> dict[str, Any]:
    """A minimal Scrapy spider: fetch, parse with the same extractor, follow the same links, store nothing."""
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.http import Response

    from crawler.demo.render import DEALER_HOST
    from crawler.pages.jsonld import parse_product_page
    from crawler.spiders.base import rebase

    counts = {"pages": 0, "records": 0}

    class BareSpider(scrapy.Spider):
        name = "bare"

        async def start(self) -> AsyncIterator[Any]:
            real = _list_url(DEALER_HOST)
            yield scrapy.Request(rebase(base_url, real), meta={"real": real})

        def parse(self, response: Response) -> Iterator[Any]:
            counts["pages"] += 1
            result = parse_product_page(response.body, response.meta["real"])
            counts["records"] += len(result.records)
            for url in result.detail_urls:
                yield scrapy.Request(rebase(base_url, url), meta={"real": url})
            if result.next_params:
                real = (
                    response.meta["real"].split("?")[0]
                    + "?"
                    + "&".join(f"{k}={v}" for k, v in result.next_params.items())
                )
                yield scrapy.Request(rebase(base_url, real), meta={"real": real})

    process = CrawlerProcess(
        {
            "LOG_LEVEL": "ERROR",
            "ROBOTSTXT_OBEY": False,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
            "TELNETCONSOLE_ENABLED": False,
            "COOKIES_ENABLED": False,
        }
    )
    process.crawl(BareSpider)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    process.start()
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    return {"pages": counts["pages"], "seconds": elapsed, "cpu": cpu, "records": counts["records"]}


def child(mode: str, base_url: str, n: int, workdir: Path) -> None:
    result = run_full(base_url, n, workdir) if mode == "full" else run_bare(base_url, n)
    print(json.dumps(result))


def spawn(mode: str, base_url: str, n: int, workdir: Path) -> dict[str, Any]:
    env = dict(os.environ, KORGWATCH_DATA_DIR=str(workdir / "data"))
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--base-url", base_url, "-n", str(n), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} crawl failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float], fmt: str) -> str:
    """min / median / max, as the benchmarks print them."""
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="product pages to serve and crawl (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one bare and one full crawl (default 3)")
    parser.add_argument("--child", choices=("full", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.n, args.workdir)
        return

    from crawler.demo.site import FixtureSite, generate_listings, serve

    listings = generate_listings("jsonld", args.n)
    wrong = with_wrong_serials(listings)
    site = FixtureSite({"jsonld": listings}, max_page_size={"jsonld": LIST_PAGE_SIZE})
    results: dict[str, list[dict[str, Any]]] = {"bare": [], "full": []}
    with tempfile.TemporaryDirectory(prefix="kw-bench-") as tmp, serve(site) as running:
        base_url = running.base_url("jsonld")
        for round_ in range(args.rounds):
            for mode in ("bare", "full") if round_ % 2 == 0 else ("full", "bare"):
                results[mode].append(spawn(mode, base_url, args.n, Path(tmp) / f"{mode}-{round_}"))
    print(f"pages served: {args.n} product pages + {-(-args.n // LIST_PAGE_SIZE)} list pages; "
          f"{wrong} listings with a serial of another model's block; {args.rounds} rounds, alternating")
    print(f"{'':40} {'pages/s (wall clock)':>26}   {'CPU ms per page':>22}   (min / median / max)")
    rates: dict[str, list[float]] = {}
    cpu_per_page: dict[str, list[float]] = {}
    for mode, label in (("bare", "bare spider (fetch + parse)"), ("full", "full crawl (spider + analyser + store)")):
        rates[mode] = [r["pages"] / r["seconds"] for r in results[mode]]
        cpu_per_page[mode] = [1000 * r["cpu"] / r["pages"] for r in results[mode]]
        print(f"{label:<40} {spread(rates[mode], '7.1f'):>26}   {spread(cpu_per_page[mode], '6.2f'):>22}")
    full = results["full"][-1]
    print(f"full crawl stored {full['listings_new']} listings, raised {full['flags']} flags, outcome {full['outcome']}")
    wall_ratios = [f / b for f, b in zip(rates["full"], rates["bare"], strict=True)]
    cpu_ratios = [b / f for f, b in zip(cpu_per_page["full"], cpu_per_page["bare"], strict=True)]
    print(f"ratio full/bare, wall clock rate: {spread(wall_ratios, '.2f')} (target >= {TARGET_RATIO})")
    print(f"ratio full/bare, CPU rate:        {spread(cpu_ratios, '.2f')} (bare CPU per page / full CPU per page)")


if __name__ == "__main__":
    main()
