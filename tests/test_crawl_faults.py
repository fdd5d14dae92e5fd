"""A crawl meeting the faults real sources produce, each source with its own, all in one subprocess crawl:

- matrixsynth: 429 with Retry-After on the first page (waited for, then retried), a truncated second page;
- reverb: HTTP 500 on every attempt (retries with backoff, then given up and recorded);
- yahoo_auctions: one item page larger than DOWNLOAD_MAXSIZE (refused; the search card is kept instead);
- jsonld: a page slower than the source's timeout (the run is stopped and recorded `timed_out`);
- ebay: a token that lives one second (fetched once, shared, renewed when expired).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from test_crawl_support import (
    ATOM,
    HTML,
    JSON,
    CrawlResult,
    Handler,
    LoopbackSite,
    loopback_site,
    mount_samples,
    run_crawl,
    sample,
    sequence,
    text,
    write_sources,
    yahoo_item_page,
)
from werkzeug import Request, Response

from db.engine import make_engine, session_scope
from db.models import CrawlRun, Listing, Source

SOURCES = ["matrixsynth", "reverb", "ebay", "yahoo_auctions", "jsonld"]
MAXSIZE = 100_000
TOKEN_TTL = 1


def truncated(document: str) -> str:
    """The document cut inside its second entry, as a dropped connection or a full disk leaves it."""
    second = document.index("<entry>", document.index("<entry>") + 1)
    return document[: second + 300]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackSite, CrawlResult, str]]:
    tmp = tmp_path_factory.mktemp("faults")
    db_url = f"sqlite:///{tmp / 'korgwatch.sqlite'}"
    counter = itertools.count(1)

    issued: dict[str, float] = {}

    def token(_request: Request) -> Response:
        value = f"token-{next(counter)}"
        issued[value] = time.monotonic()
        body = {"access_token": value, "expires_in": TOKEN_TTL, "token_type": "Application"}
        return Response(json.dumps(body), content_type=JSON)

    def checks_token(handler: Handler) -> Handler:
        """eBay's behaviour: an unknown or expired token gets 401."""

        def checked(request: Request) -> Response:
            value = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if value not in issued or time.monotonic() - issued[value] > TOKEN_TTL:
                return Response('{"errors": [{"errorId": 1001}]}', status=401, content_type=JSON)
            return handler(request)

        return checked

    with loopback_site() as site:
        mount_samples(site, token_handler=token)
        feed = "/matrixsynth/feeds/posts/default"
        site.route(
            feed,
            sequence(
                text("slow down", "text/plain", status=429, headers={"Retry-After": "1"}),
                text(sample("matrixsynth/feed_posts_default_page1.atom.xml"), ATOM),
            ),
            when=lambda q: "start-index" not in q,
        )
        site.route(
            feed,
            text(truncated(sample("matrixsynth/feed_posts_default_page2_last.atom.xml")), ATOM),
            when=lambda q: q.get("start-index") == "4",
        )
        site.routes = [
            (path, when, checks_token(handler) if path.startswith("/ebay/buy/") else handler)
            for path, when, handler in site.routes
        ]
        site.route("/reverb/api/listings", text("upstream exploded", "text/plain", status=500))
        oversized = yahoo_item_page("x1100000001").replace("</body>", "<!--" + "x" * MAXSIZE + "--></body>")
        site.route("/yahoo_auctions/jp/auction/x1100000001", text(oversized, HTML))

        def slow(request: Request) -> Response:
            time.sleep(3)
            return text(sample("jsonld/product_page_jsonld.html"), HTML)(request)

        site.route("/jsonld/products/korg-ms-20.html", slow)
        config = write_sources(tmp / "sources.yaml", site, ebay={"delay": 0.25}, jsonld={"timeout": 1})
        result = run_crawl(
            tmp,
            SOURCES,
            config,
            db_url,
            "--set",
            "RETRY_TIMES=2",
            "--set",
            "RETRY_BACKOFF_BASE=0.05",
            "--set",
            f"DOWNLOAD_MAXSIZE={MAXSIZE}",
            "--set",
            "DOWNLOAD_WARNSIZE=0",
            "--set",
            "LOG_LEVEL=WARNING",
        )
        yield site, result, db_url


def titles(db_url: str, source: str) -> dict[str, Listing]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            rows = session.scalars(select(Listing).join(Source).where(Source.name == source)).all()
            return {row.external_id: row for row in rows}
    finally:
        engine.dispose()


def crawl_runs(db_url: str) -> dict[str, CrawlRun]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            return {run.source.name: run for run in session.scalars(select(CrawlRun)).all()}
    finally:
        engine.dispose()


def test_no_traceback_and_nonzero_exit(faulty: tuple[LoopbackSite, CrawlResult, str]) -> None:
    _site, result, _db = faulty
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_429_waits_for_retry_after_then_succeeds(faulty: tuple[LoopbackSite, CrawlResult, str]) -> None:
    site, result, _db = faulty
    firsts = [t for path, t in site.times if path == "/matrixsynth/feeds/posts/default"]
    assert len(firsts) == 3  # 429, the retry, then page 2
    assert firsts[1] - firsts[0] >= 0.9
    assert result.runs["matrixsynth"]["retries"] == 1


def test_truncated_feed_keeps_good_entries_and_records_error(
    faulty: tuple[LoopbackSite, CrawlResult, str],
) -> None:
    _site, result, db_url = faulty
    run = result.runs["matrixsynth"]
    rows = titles(db_url, "matrixsynth")
    assert len(rows) == 4  # page 1's three, and page 2's entry before the cut
    assert "5550000000000000104" in rows
    assert run["outcome"] == "degraded"
    assert run["errors"] >= 1
    assert any("XML syntax error" in message for message in run["messages"])
    stored = crawl_runs(db_url)["matrixsynth"]
    assert stored.outcome == "degraded" and stored.errors == run["errors"]
    assert "XML syntax error" in (stored.log_tail or "")


def test_500_exhausts_retries_and_is_recorded(faulty: tuple[LoopbackSite, CrawlResult, str]) -> None:
    site, result, db_url = faulty
    assert len(site.requests("/reverb/api/listings")) == 3  # the request and two retries
    run = result.runs["reverb"]
    assert run["outcome"] == "failed" and run["pages"] == 0 and run["errors"] == 1
    assert any("HTTP 500" in message for message in run["messages"])
    stored = crawl_runs(db_url)["reverb"]
    assert (stored.outcome, stored.errors, stored.pages) == ("failed", 1, 0)
    assert titles(db_url, "reverb") == {}


def test_oversized_response_refused(faulty: tuple[LoopbackSite, CrawlResult, str]) -> None:
    _site, result, db_url = faulty
    run = result.runs["yahoo_auctions"]
    assert run["outcome"] == "degraded"
    assert any("x1100000001" in message for message in run["messages"])
    rows = titles(db_url, "yahoo_auctions")
    assert len(rows) == 6
    # The refused item page's listing is kept from its search card (title and price, no description).
    assert rows["x1100000001"].title.startswith("KORG MS-20") and rows["x1100000001"].body == ""
    assert "製造番号" in rows["x1100000003"].body or rows["x1100000003"].body


def test_ebay_token_cached_and_renewed(faulty: tuple[LoopbackSite, CrawlResult, str]) -> None:
    """The token is shared by many requests and renewed after it expires; every page still arrives."""
    site, result, db_url = faulty
    assert result.runs["ebay"]["outcome"] == "ok"
    tokens = site.requests("/ebay/identity/")
    api = site.requests("/ebay/buy/")
    assert len(api) >= 7  # two search pages, five items, and any resent after a 401
    assert 2 <= len(tokens) <= len(api) // 2
    used = [headers["Authorization"] for *_x, headers in api]
    assert used[0] == "Bearer token-1" and used[-1] == f"Bearer token-{len(tokens)}"
    assert len(titles(db_url, "ebay")) == 5


def test_summary_is_written_even_when_sources_fail(faulty: tuple[LoopbackSite, CrawlResult, str]) -> None:
    _site, result, _db = faulty
    assert set(result.runs) == set(SOURCES)
    assert "Crawl summary" in result.stderr


def test_slow_source_times_out_and_is_recorded(faulty: tuple[LoopbackSite, CrawlResult, str]) -> None:
    _site, result, db_url = faulty
    run = result.runs["jsonld"]
    assert (run["outcome"], run["finish_reason"]) == ("timed_out", "closespider_timeout")
    assert crawl_runs(db_url)["jsonld"].outcome == "timed_out"
