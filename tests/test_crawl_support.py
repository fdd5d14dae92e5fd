"""Support for the crawl tests: a loopback site serving the sources' real formats, and a crawl subprocess.

Each source is mounted under `/<source>` on one pytest-httpserver, with the shared samples as bodies; their
absolute links keep pointing at the real hosts, as they do in the wild. Twisted's reactor runs once per
process, so every crawl runs as `python -m crawler.run` in a subprocess and reports through `--json`.
(The module holds no tests; it is named `test_*` so the crawl tests can import it from the tests folder.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT.parent / "shared" / "sources"
if not SAMPLES.is_dir():  # a fresh clone with shared/ beside it
    SAMPLES = Path("/work/shared/sources")

Handler = Callable[[Request], Response]


def sample(relative: str) -> str:
    return (SAMPLES / relative).read_text(encoding="utf-8")


@dataclass
class LoopbackSite:
    """Routes by path (and, optionally, a predicate on the query); records every request it gets."""

    server: HTTPServer
    routes: list[tuple[str, Callable[[dict[str, str]], bool], Handler]] = field(default_factory=list)
    log: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    times: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self.dispatch)
        self.route("/robots.txt", text("User-agent: *\nDisallow: /private/\n", "text/plain"))

    @property
    def root(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def base_url(self, source: str) -> str:
        return f"{self.root}/{source}"

    def route(self, path: str, handler: Handler, when: Callable[[dict[str, str]], bool] | None = None) -> None:
        self.routes.insert(0, (path, when or (lambda _q: True), handler))

    def dispatch(self, request: Request) -> Response:
        self.times.append((request.path, time.monotonic()))
        query = dict(request.args.items())
        self.log.append((request.method, request.path, query, dict(request.headers.items())))
        for path, when, handler in self.routes:
            if path == request.path and when(query):
                return handler(request)
        return Response("not found", status=404)

    def requests(self, path_prefix: str) -> list[tuple[str, str, dict[str, str], dict[str, str]]]:
        return [entry for entry in self.log if entry[1].startswith(path_prefix)]


def text(body: str, content_type: str, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    def handler(_request: Request) -> Response:
        return Response(body, status=status, content_type=content_type, headers=headers)

    return handler


def sequence(*handlers: Handler) -> Handler:
    """Answer the n-th request with the n-th handler (the last one repeats)."""
    calls = iter(handlers)
    last: list[Handler] = []

    def handler(request: Request) -> Response:
        current = next(calls, None)
        if current is not None:
            last[:] = [current]
        return last[0](request)

    return handler


ATOM = "application/atom+xml; charset=UTF-8"
JSON = "application/json"
HAL = "application/hal+json"
HTML = "text/html; charset=utf-8"

EBAY_ITEM_IDS = ("395500000001", "226600000002", "187700000004", "404400000005", "405500000006")


def ebay_item(request: Request) -> Response:
    """getItem for any id: the sample item with its ids changed to the one asked for."""
    item_id = request.path.rsplit("/", 1)[-1]
    legacy = item_id.split("|")[1] if "|" in item_id else item_id
    body = sample("ebay/browse_get_item.json").replace("395500000001", legacy)
    return Response(body, content_type=JSON)


YAHOO_SAMPLE_TITLE = "KORG MS-20 アナログシンセサイザー 製造番号144571 動作品"


def yahoo_cards() -> dict[str, tuple[str, str]]:
    """Title and price of every search card on both served search pages, by auction id."""
    from crawler.pages.yahoo_auctions import parse_search

    cards = {}
    for page in (sample("yahoo_auctions/search_results.html"), yahoo_last_page()):
        for record in parse_search(page, "https://auctions.yahoo.co.jp/search/search?p=x").records:
            cards[record.external_id] = (record.title, record.price or "98000")
    return cards


def yahoo_item_page(auction_id: str) -> str:
    """The sample item page as the item `auction_id` (its card's title and price), like a real site."""
    title, price = yahoo_cards()[auction_id]
    page = sample("yahoo_auctions/item_page.html").replace("x1100000001", auction_id)
    page = page.replace(YAHOO_SAMPLE_TITLE, title).replace("98000", price)
    return page.replace("98,000", f"{int(price):,}")


def yahoo_item(request: Request) -> Response:
    return Response(yahoo_item_page(request.path.rsplit("/", 1)[-1]), content_type=HTML)


def yahoo_last_page() -> str:
    """A second search page: other auction ids, and no "next" in the pager."""
    page = sample("yahoo_auctions/search_results.html").replace("1100000", "2200000")
    return re.sub(r'<li class="Pager__list Pager__list--next">.*?</li>', "", page, flags=re.S)


def mount_samples(site: LoopbackSite, *, token_handler: Handler | None = None) -> None:
    """Every source's sample pages at the paths (and paging parameters) the spiders ask for."""
    feed = "/matrixsynth/feeds/posts/default"
    site.route(feed, text(sample("matrixsynth/feed_posts_default_page1.atom.xml"), ATOM))
    site.route(
        feed,
        text(sample("matrixsynth/feed_posts_default_page2_last.atom.xml"), ATOM),
        when=lambda q: q.get("start-index") == "4",
    )
    site.route("/reverb/api/listings", text(sample("reverb/listings_page1.json"), HAL))
    site.route(
        "/reverb/api/listings",
        text(sample("reverb/listings_page2_last.json"), HAL),
        when=lambda q: q.get("page") == "2",
    )
    search = "/ebay/buy/browse/v1/item_summary/search"
    site.route(search, text(sample("ebay/browse_search_page1.json"), JSON))
    site.route(
        search,
        text(sample("ebay/browse_search_page2_last.json"), JSON),
        when=lambda q: q.get("offset") == "3",
    )
    for item_id in EBAY_ITEM_IDS:
        site.route(f"/ebay/buy/browse/v1/item/v1|{item_id}|0", ebay_item)
    site.route(
        "/ebay/identity/v1/oauth2/token",
        token_handler or text(sample("ebay/oauth_token_response.json"), JSON),
    )
    yahoo = "/yahoo_auctions/search/search"
    site.route(yahoo, text(sample("yahoo_auctions/search_results.html"), HTML))
    site.route(yahoo, text(yahoo_last_page(), HTML), when=lambda q: q.get("b") == "51")
    for prefix in ("11", "22"):
        for auction_id in (f"x{prefix}00000001", f"c{prefix}00000002", f"x{prefix}00000003"):
            site.route(f"/yahoo_auctions/jp/auction/{auction_id}", yahoo_item)
    site.route("/jsonld/products/korg-ms-20.html", text(sample("jsonld/product_page_jsonld.html"), HTML))
    site.route("/jsonld/products/korg-mono-poly.html", text(sample("jsonld/product_page_microdata.html"), HTML))


JSONLD_PAGES = (
    "https://shop.example-vintage-synths.test/products/korg-ms-20.html",
    "https://shop.example-vintage-synths.test/products/korg-mono-poly.html",
)


def write_sources(path: Path, site: LoopbackSite, *, photos: bool = False, **per_source: dict[str, Any]) -> Path:
    """A sources.yaml putting every source on the loopback site, three results per page like the samples.

    Photos are off unless asked for: the samples' image URLs name the real hosts, and tests use no internet
    (tests/test_photos_crawl.py crawls photos from a loopback site)."""
    sources: dict[str, dict[str, Any]] = {
        "matrixsynth": {"feeds": ["/feeds/posts/default"], "page_size": 3},
        "reverb": {"queries": ["korg ms-20"], "page_size": 3},
        "ebay": {"queries": ["korg ms-20"], "page_size": 3, "fetch_details": True},
        "yahoo_auctions": {"queries": ["KORG MS-20"], "page_size": 50, "fetch_details": True},
        "jsonld": {"pages": list(JSONLD_PAGES), "date_sorted": False},
    }
    lines = ["contact_url: https://example.org/korgwatch-tests", f"photos: {json.dumps(photos)}", "sources:"]
    for name, values in sources.items():
        values = {
            "base_url": site.base_url(name),
            "delay": 0,
            "timeout": 60,
            **values,
            **per_source.get(name, {}),
        }
        lines.append(f"  {name}:")
        lines.extend(f"    {key}: {json.dumps(value)}" for key, value in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class CrawlResult:
    returncode: int
    stderr: str
    runs: dict[str, dict[str, Any]]


def run_crawl(
    tmp_path: Path,
    sources: list[str],
    config: Path,
    db_url: str,
    *extra: str,
    env: dict[str, str] | None = None,
    credentials: bool = True,
    name: str = "runs",
) -> CrawlResult:
    """`python -m crawler.run` in a subprocess (a fresh reactor), returning its runs by source."""
    out = tmp_path / f"{name}.json"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBAY_")}
    environment |= {
        "KORGWATCH_DATA_DIR": str(tmp_path / "data"),
        "PYTHONWARNINGS": "always::DeprecationWarning",
    }
    if credentials:
        environment |= {"EBAY_CLIENT_ID": "test-id", "EBAY_CLIENT_SECRET": "test-secret"}
    environment |= env or {}
    command = [
        sys.executable,
        "-m",
        "crawler.run",
        *sources,
        "--config",
        str(config),
        "--db",
        db_url,
        "--json",
        str(out),
        "--no-progress",
        "--set",
        "LOG_LEVEL=INFO",
        "--set",
        "ROBOTSTXT_OBEY=true",
        *extra,
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120)
    (tmp_path / f"{name}.stderr.txt").write_text(done.stderr, encoding="utf-8")
    if not out.exists():
        pytest.fail(f"crawl wrote no result (exit {done.returncode}):\n{done.stderr[-4000:]}")
    runs = {run["source"]: run for run in json.loads(out.read_text(encoding="utf-8"))}
    return CrawlResult(done.returncode, done.stderr, runs)


@contextmanager
def loopback_site() -> Iterator[LoopbackSite]:
    """A started loopback site, stopped afterwards."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield LoopbackSite(server)
    finally:
        server.clear()
        if server.is_running():
            server.stop()
