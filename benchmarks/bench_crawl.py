"""Crawl throughput: the full crawl (spider + analyser + store) against a bare Scrapy spider, same pages.

A loopback fixture site serves N generated dealer product pages (schema.org JSON-LD, reached through ItemList
list pages, as `crawler/spiders/jsonld.py` crawls them). Both crawls run with politeness off (no delay, no
AutoThrottle, no robots.txt), each in its own subprocess (Twisted's reactor runs once per process), and each
times its crawl only, not interpreter start-up or schema creation. The bare spider fetches and parses the same
pages with the same extractor and stores nothing; the ratio full/bare is the cost of analysing and storing.

    .venv/bin/python benchmarks/bench_crawl.py            # N = 5,000
    .venv/bin/python benchmarks/bench_crawl.py -n 500     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
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
        photo_dir=workdir / "photos",  # the generated listings show four distinct photos: fetched once each
        polite=False,
        progress=False,
        settings={"LOG_LEVEL": "ERROR", "CLOSESPIDER_TIMEOUT": 0},
        source_overrides={"jsonld": {"pages": (_list_url(DEALER_HOST),), "page_limit": n, "timeout": 0.0}},
    )
    started = time.perf_counter()
    (run,) = run_crawls(options)
    elapsed = time.perf_counter() - started
    return {
        "pages": run.pages,
        "seconds": elapsed,
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
    started = time.perf_counter()
    process.start()
    elapsed = time.perf_counter() - started
    return {"pages": counts["pages"], "seconds": elapsed, "records": counts["records"]}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="product pages to serve and crawl (default 5000)")
    parser.add_argument("--child", choices=("full", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.n, args.workdir)
        return

    from crawler.demo.site import FixtureSite, generate_listings, serve

    site = FixtureSite({"jsonld": generate_listings("jsonld", args.n)}, max_page_size={"jsonld": LIST_PAGE_SIZE})
    with tempfile.TemporaryDirectory(prefix="kw-bench-") as tmp, serve(site) as running:
        base_url = running.base_url("jsonld")
        bare = spawn("bare", base_url, args.n, Path(tmp) / "bare")
        full = spawn("full", base_url, args.n, Path(tmp) / "full")
    bare_rate = bare["pages"] / bare["seconds"]
    full_rate = full["pages"] / full["seconds"]
    ratio = full_rate / bare_rate
    print(f"pages served: {args.n} product pages + {-(-args.n // LIST_PAGE_SIZE)} list pages")
    for label, result, rate in (
        ("bare spider (fetch + parse)", bare, bare_rate),
        ("full crawl (spider + analyser + store)", full, full_rate),
    ):
        print(f"{label:<40} {result['pages']:6d} pages in {result['seconds']:6.1f} s = {rate:7.1f} pages/s")
    print(f"full crawl stored {full['listings_new']} listings, raised {full['flags']} flags, outcome {full['outcome']}")
    print(f"ratio full/bare: {ratio:.2f} (target >= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
