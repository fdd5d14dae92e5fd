"""Every spider against a loopback site serving the sources' real formats, into a real SQLite store.

One crawl of all five sources (a subprocess: the reactor runs once per process) feeds the record tests;
a second crawl of the same site checks the incremental stop, a third `--full` with a job directory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_crawl_support import (
    EBAY_ITEM_IDS,
    JSONLD_PAGES,
    CrawlResult,
    LoopbackSite,
    loopback_site,
    mount_samples,
    run_crawl,
    sample,
    write_sources,
    yahoo_item_page,
    yahoo_last_page,
)

from crawler.pages import ebay, jsonld, matrixsynth, reverb, yahoo_auctions
from crawler.pages.records import ListingRecord
from db.engine import make_engine, session_scope
from db.models import CrawlRun, Listing, Source

ALL = ["matrixsynth", "reverb", "ebay", "yahoo_auctions", "jsonld"]


@pytest.fixture(scope="module")
def crawled(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LoopbackSite, CrawlResult, Path, str]]:
    tmp = tmp_path_factory.mktemp("crawl")
    db_url = f"sqlite:///{tmp / 'korgwatch.sqlite'}"
    with loopback_site() as site:
        mount_samples(site)
        config = write_sources(tmp / "sources.yaml", site)
        result = run_crawl(tmp, ALL, config, db_url)
        yield site, result, tmp, db_url


def stored(db_url: str, source: str) -> dict[str, Listing]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            rows = session.scalars(select(Listing).join(Source).where(Source.name == source)).all()
            return {row.external_id: row for row in rows}
    finally:
        engine.dispose()


def assert_same(row: Listing, record: ListingRecord) -> None:
    """The stored listing is the extractor's record, field by field (plus the evidence hash)."""
    assert row.url == record.url
    assert row.title == record.title
    assert row.body == record.body
    assert row.seller == record.seller
    assert row.currency == record.currency
    assert (row.price, row.posted_at is None) == (
        None if record.price is None else Decimal(record.price),
        record.posted_at is None,
    )
    if record.posted_at:
        from datetime import datetime

        assert row.posted_at == datetime.fromisoformat(record.posted_at.replace("Z", "+00:00"))
    assert tuple(row.images) == record.images
    extra = dict(row.extra)
    assert len(extra.pop("evidence_sha256")) == 64
    assert extra == json.loads(json.dumps(record.extra))


def test_every_source_ok(crawled: tuple[LoopbackSite, CrawlResult, Path, str]) -> None:
    _site, result, _tmp, _db = crawled
    assert result.returncode == 0, result.stderr[-3000:]
    assert {name: run["outcome"] for name, run in result.runs.items()} == dict.fromkeys(ALL, "ok")
    assert "Traceback" not in result.stderr
    assert "ScrapyDeprecationWarning" not in result.stderr


def test_matrixsynth_records_and_paging(crawled: tuple[LoopbackSite, CrawlResult, Path, str]) -> None:
    site, result, _tmp, db_url = crawled
    expected = [
        *matrixsynth.parse_atom_feed(sample("matrixsynth/feed_posts_default_page1.atom.xml")).records,
        *matrixsynth.parse_atom_feed(sample("matrixsynth/feed_posts_default_page2_last.atom.xml")).records,
    ]
    rows = stored(db_url, "matrixsynth")
    assert set(rows) == {r.external_id for r in expected} and len(rows) == 5
    for record in expected:
        assert_same(rows[record.external_id], record)
    assert rows[expected[0].external_id].title == "Korg MS-20 Analog Synthesizer SN 144571"
    assert rows[expected[0].external_id].url.startswith("https://www.matrixsynth.com/")
    # The feed's `next` points at www.blogger.com; the spider followed its parameters on the loopback site.
    pages = [q for _m, _p, q, _h in site.requests("/matrixsynth/feeds/")]
    assert pages == [{"max-results": "3"}, {"max-results": "3", "start-index": "4"}]
    run = result.runs["matrixsynth"]
    assert (run["pages"], run["listings_new"], run["errors"]) == (2, 5, 0)


def test_reverb_records_headers_and_paging(crawled: tuple[LoopbackSite, CrawlResult, Path, str]) -> None:
    site, _result, _tmp, db_url = crawled
    expected = [
        *reverb.parse_listings(sample("reverb/listings_page1.json")).records,
        *reverb.parse_listings(sample("reverb/listings_page2_last.json")).records,
    ]
    rows = stored(db_url, "reverb")
    assert set(rows) == {r.external_id for r in expected}
    for record in expected:
        assert_same(rows[record.external_id], record)
    requests = site.requests("/reverb/api/listings")
    assert [q.get("page") for _m, _p, q, _h in requests] == ["1", "2"]
    assert requests[0][2]["query"] == "korg ms-20"
    # page 2 carries `_links.next`'s own parameters (query=korg, product_type) rebuilt on the loopback base
    assert requests[1][2]["query"] == "korg" and requests[1][2]["product_type"] == "keyboards-and-synths"
    assert all(h.get("Accept-Version") == "3.0" for _m, _p, _q, h in requests)
    assert all(h.get("User-Agent", "").startswith("korgwatch/") for _m, _p, _q, h in requests)
    assert "(+https://example.org/korgwatch-tests)" in requests[0][3]["User-Agent"]


def test_ebay_token_once_and_item_details(crawled: tuple[LoopbackSite, CrawlResult, Path, str]) -> None:
    site, _result, _tmp, db_url = crawled
    tokens = site.requests("/ebay/identity/")
    assert len(tokens) == 1
    method, _path, _query, headers = tokens[0]
    assert method == "POST" and headers["Authorization"].startswith("Basic ")
    api = site.requests("/ebay/buy/")
    assert len(api) == 2 + len(EBAY_ITEM_IDS)
    assert all(h["Authorization"] == "Bearer v^1.1#i^1#p^1#I^3#r^0#f^0#t^FAKE-TEST-TOKEN" for *_x, h in api)
    assert all(h["X-Ebay-C-Marketplace-Id"] == "EBAY_US" for *_x, h in api)
    assert [q.get("offset") for _m, p, q, _h in api if p.endswith("/search")] == ["0", "3"]
    rows = stored(db_url, "ebay")
    assert set(rows) == set(EBAY_ITEM_IDS)
    for item_id in EBAY_ITEM_IDS:
        body = sample("ebay/browse_get_item.json").replace("395500000001", item_id)
        assert_same(rows[item_id], ebay.parse_item(body))
    assert "Serial Number" in rows["395500000001"].body


def test_yahoo_search_then_item_pages(crawled: tuple[LoopbackSite, CrawlResult, Path, str]) -> None:
    site, _result, _tmp, db_url = crawled
    rows = stored(db_url, "yahoo_auctions")
    ids = {"x1100000001", "c1100000002", "x1100000003", "x2200000001", "c2200000002", "x2200000003"}
    assert set(rows) == ids
    for auction_id in ids:
        url = f"https://auctions.yahoo.co.jp/jp/auction/{auction_id}"
        assert_same(rows[auction_id], yahoo_auctions.parse_item(yahoo_item_page(auction_id), url))
    assert rows["x1100000001"].posted_at is not None
    searches = site.requests("/yahoo_auctions/search/")
    assert [q["b"] for *_x, q, _h in searches] == ["1", "51"]
    assert yahoo_auctions.parse_search(yahoo_last_page(), "https://auctions.yahoo.co.jp/search/search").records


def test_jsonld_pages(crawled: tuple[LoopbackSite, CrawlResult, Path, str]) -> None:
    _site, _result, _tmp, db_url = crawled
    rows = stored(db_url, "jsonld")
    expected = [
        *jsonld.parse_product_page(sample("jsonld/product_page_jsonld.html"), JSONLD_PAGES[0]).records,
        *jsonld.parse_product_page(sample("jsonld/product_page_microdata.html"), JSONLD_PAGES[1]).records,
    ]
    assert expected and set(rows) == {r.external_id for r in expected}
    for record in expected:
        assert_same(rows[record.external_id], record)


def test_evidence_kept_compressed_and_content_addressed(
    crawled: tuple[LoopbackSite, CrawlResult, Path, str],
) -> None:
    _site, _result, tmp, db_url = crawled
    row = stored(db_url, "matrixsynth")
    digest = next(iter(row.values())).extra["evidence_sha256"]
    raw = gzip.decompress((tmp / "data" / "evidence" / digest[:2] / f"{digest}.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == digest
    assert raw.decode("utf-8") == sample("matrixsynth/feed_posts_default_page1.atom.xml")


def test_crawl_runs_recorded(crawled: tuple[LoopbackSite, CrawlResult, Path, str]) -> None:
    _site, result, _tmp, db_url = crawled
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        runs = {r.source.name: r for r in session.scalars(select(CrawlRun)).all()}
    engine.dispose()
    assert set(runs) == set(ALL)
    for name, run in runs.items():
        assert run.outcome == "ok"
        assert run.pages == result.runs[name]["pages"] > 0
        assert run.listings_new == result.runs[name]["listings_new"] > 0
        assert run.finished_at is not None and run.finished_at >= run.started_at


def _second_crawl(
    crawled: tuple[LoopbackSite, CrawlResult, Path, str], *extra: str, name: str, **kwargs: Any
) -> tuple[LoopbackSite, CrawlResult, int]:
    site, _result, tmp, db_url = crawled
    before = len(site.log)
    config = tmp / "sources.yaml"
    result = run_crawl(tmp, ALL, config, db_url, *extra, name=name, **kwargs)
    return site, result, before


def test_incremental_then_full_and_no_credentials(
    crawled: tuple[LoopbackSite, CrawlResult, Path, str],
) -> None:
    """Second crawl: every first page is known and unchanged, so no source pages on and no detail is fetched.
    eBay has no credentials this time: skipped with one log line. Then --full pages to the end again."""
    site, result, before = _second_crawl(crawled, name="incremental", credentials=False)
    assert result.returncode == 0, result.stderr[-3000:]
    new_requests = [(p, q) for _m, p, q, _h in site.log[before:] if p != "/robots.txt"]
    assert sorted(new_requests, key=str) == sorted(
        [
            ("/matrixsynth/feeds/posts/default", {"max-results": "3"}),
            (
                "/reverb/api/listings",
                {"query": "korg ms-20", "per_page": "3", "sort": "published_at|desc", "page": "1"},
            ),
            (
                "/yahoo_auctions/search/search",
                {
                    "p": "KORG MS-20",
                    "va": "KORG MS-20",
                    "exflg": "1",
                    "b": "1",
                    "n": "50",
                    "s1": "new",
                    "o1": "d",
                },
            ),
            ("/jsonld/products/korg-ms-20.html", {}),
            ("/jsonld/products/korg-mono-poly.html", {}),
        ],
        key=str,
    )
    runs = result.runs
    assert runs["ebay"]["outcome"] == "skipped"
    assert [line for line in result.stderr.splitlines() if "EBAY_CLIENT_ID" in line] == [
        next(line for line in result.stderr.splitlines() if "EBAY_CLIENT_ID" in line)
    ]
    assert "Traceback" not in result.stderr
    assert runs["matrixsynth"]["listings_unchanged"] == 3 and runs["matrixsynth"]["listings_new"] == 0
    assert runs["yahoo_auctions"]["listings_unchanged"] == 3 and runs["yahoo_auctions"]["listings_updated"] == 0
    assert all(runs[s]["outcome"] == "ok" for s in ("matrixsynth", "reverb", "yahoo_auctions", "jsonld"))

    _tmp = crawled[2]
    site, result, before = _second_crawl(
        crawled, "--full", "--jobdir", str(_tmp / "jobs"), name="full", credentials=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pages = [q for _m, p, q, _h in site.log[before:] if p == "/matrixsynth/feeds/posts/default"]
    assert pages == [{"max-results": "3"}, {"max-results": "3", "start-index": "4"}]
    assert result.runs["matrixsynth"]["listings_unchanged"] == 5
    assert (_tmp / "jobs" / "matrixsynth").is_dir()


def test_full_crawl_resumes_from_its_job_directory(tmp_path: Path) -> None:
    """A --full crawl stopped half-way (here by CLOSESPIDER_ITEMCOUNT) resumes from --jobdir: the pages it
    already fetched are not fetched again, the ones it had queued are."""
    db_url = f"sqlite:///{tmp_path / 'k.sqlite'}"
    jobs = tmp_path / "jobs"
    with loopback_site() as site:
        mount_samples(site)
        config = write_sources(tmp_path / "sources.yaml", site)
        first = run_crawl(
            tmp_path,
            ["yahoo_auctions"],
            config,
            db_url,
            "--full",
            "--jobdir",
            str(jobs),
            "--set",
            "CLOSESPIDER_ITEMCOUNT=1",
            "--set",
            "CONCURRENT_REQUESTS=1",
            name="first",
        )
        fetched_first = [p for _m, p, _q, _h in site.log if p != "/robots.txt"]
        second = run_crawl(
            tmp_path,
            ["yahoo_auctions"],
            config,
            db_url,
            "--full",
            "--jobdir",
            str(jobs),
            "--set",
            "CONCURRENT_REQUESTS=1",
            name="second",
        )
        fetched_second = [p for _m, p, _q, _h in site.log if p != "/robots.txt"][len(fetched_first) :]
    assert first.runs["yahoo_auctions"]["finish_reason"] == "closespider_itemcount"
    assert second.runs["yahoo_auctions"]["outcome"] == "ok"
    assert "/yahoo_auctions/search/search" in fetched_first
    assert fetched_second and set(fetched_first).isdisjoint(fetched_second)
    assert len(stored(db_url, "yahoo_auctions")) == 6
