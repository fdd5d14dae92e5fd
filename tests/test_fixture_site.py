"""The fixture site: every source renders parseably by our own extractors (render → parse → same records),
paging links are in the real hosts' form, robots.txt allows all, eBay wants a token, faults and the log work.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from crawler.demo.site import (
    SOURCES,
    FixtureSite,
    RunningSite,
    expected_record,
    generate_listings,
    load_demo_listings,
    serve,
)
from crawler.pages import ebay, jsonld, matrixsynth, reverb, yahoo_auctions
from crawler.pages.records import ListingRecord, PageResult

CORE = ("source", "url", "external_id", "title", "body", "seller", "posted_at", "price", "currency", "images")


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None
) -> Fetched:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Fetched(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        return Fetched(exc.code, dict(exc.headers.items()), exc.read())


def core(record: ListingRecord) -> dict[str, Any]:
    data = record.to_dict()
    return {key: data[key] for key in CORE}


def crawl(
    base: str, path: str, params: dict[str, str], parse: Callable[[bytes, str], PageResult], **headers: str
) -> Iterator[tuple[str, PageResult]]:
    """Follow `next_params` from page to page on `base`, as a spider does."""
    while True:
        url = f"{base}{path}?{urlencode(params)}"
        fetched = fetch(url, headers=headers)
        assert fetched.status == 200, (url, fetched.status, fetched.body[:200])
        result = parse(fetched.body, url)
        assert result.errors == (), result.errors
        yield url, result
        if not result.next_params:
            return
        params = {**params, **result.next_params}


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSite]:
    with serve(FixtureSite(ebay_credentials=("demo-id", "demo-secret"))) as site:
        yield site


@pytest.fixture(autouse=True)
def _clean(running: RunningSite) -> Iterator[None]:
    running.clear_log()
    running.clear_faults()
    yield
    running.clear_faults()


def ebay_token(base: str, client: str = "demo-id", secret: str = "demo-secret") -> Fetched:
    basic = base64.b64encode(f"{client}:{secret}".encode()).decode()
    return fetch(
        f"{base}/identity/v1/oauth2/token",
        method="POST",
        data=b"grant_type=client_credentials&scope=https%3A%2F%2Fapi.ebay.com%2Foauth%2Fapi_scope",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )


# --- robots, mounts, log ------------------------------------------------------------------------------


def test_robots_txt_allows_all_at_the_root(running: RunningSite) -> None:
    fetched = fetch(f"{running.root}/robots.txt")
    assert fetched.status == 200
    assert fetched.body.decode().splitlines() == ["User-agent: *", "Allow: /"]


def test_unknown_path_is_404_and_logged(running: RunningSite) -> None:
    assert fetch(f"{running.root}/nothing/here").status == 404
    (entry,) = running.requests
    assert (entry.method, entry.path, entry.status) == ("GET", "/nothing/here", 404)


def test_base_urls(running: RunningSite) -> None:
    assert running.base_url("reverb") == f"{running.root}/reverb"
    assert running.base_url("reverb", prefixed=False) == running.root
    with pytest.raises(ValueError):
        running.base_url("craigslist")


@pytest.mark.parametrize("prefixed", [True, False])
def test_each_source_answers_under_its_mount_and_at_the_root(running: RunningSite, prefixed: bool) -> None:
    base = running.base_url("reverb", prefixed=prefixed)
    fetched = fetch(f"{base}/api/listings?query=korg&per_page=2")
    assert fetched.status == 200 and json.loads(fetched.body)["total"] > 0
    assert running.requests[-1].source == "reverb"
    assert running.requests[-1].query == {"query": "korg", "per_page": "2"}


# --- round trips: render → parse → same records --------------------------------------------------------


@pytest.mark.parametrize("alt", [None, "json"])
def test_matrixsynth_round_trip(running: RunningSite, alt: str | None) -> None:
    base = running.base_url("matrixsynth")
    params = {"max-results": "25", **({"alt": alt} if alt else {})}
    parse = (
        (lambda body, url: matrixsynth.parse_json_feed(body))
        if alt
        else (lambda body, url: matrixsynth.parse_atom_feed(body))
    )
    pages = list(crawl(base, "/feeds/posts/default", params, parse))
    records = [record for _, result in pages for record in result.records]
    expected = running.site.expected_records("matrixsynth")
    assert [core(r) for r in records] == [core(r) for r in expected]
    assert len(pages) == 4, "14 posts at the demo cap of 4 per page"
    assert pages[0][1].total == 14
    assert running.count("/matrixsynth/feeds/posts/default") == len(pages)
    starts = [entry.query["start-index"] for entry in running.requests[1:]]
    assert starts == ["5", "9", "13"], "each page fetched exactly once"


def test_matrixsynth_rss_round_trip(running: RunningSite) -> None:
    pages = list(
        crawl(running.base_url("matrixsynth"), "/feeds/posts/default", {"alt": "rss", "max-results": "5"},
              lambda body, url: matrixsynth.parse_rss_feed(body))
    )  # fmt: skip
    records = [record for _, result in pages for record in result.records]
    expected = running.site.expected_records("matrixsynth")
    same_but_time = [{**core(r), "posted_at": None} for r in records]
    assert same_but_time == [{**core(r), "posted_at": None} for r in expected]
    for got, want in zip(records, expected, strict=True):
        assert got.posted_at and want.posted_at
        assert datetime.fromisoformat(got.posted_at) == datetime.fromisoformat(want.posted_at)
    assert pages[0][1].next_params == {"alt": "rss", "start-index": "5", "max-results": "4"}


def test_matrixsynth_next_link_is_in_the_blogger_form(running: RunningSite) -> None:
    body = fetch(f"{running.base_url('matrixsynth')}/feeds/posts/default?max-results=3").body.decode()
    assert (
        "<link rel='next' type='application/atom+xml' "
        "href='https://www.blogger.com/feeds/1700000000000000001/posts/default?start-index=4&amp;max-results=3'/>"
    ) in body
    gdata = fetch(f"{running.base_url('matrixsynth')}/feeds/posts/default?alt=json&max-results=3").body.decode()
    assert "posts/default?alt\\u003djson\\u0026start-index\\u003d4\\u0026max-results\\u003d3" in gdata


def test_matrixsynth_label_feed(running: RunningSite) -> None:
    fetched = fetch(f"{running.base_url('matrixsynth')}/feeds/posts/default/-/Korg%20MS-20?max-results=50")
    result = matrixsynth.parse_atom_feed(fetched.body)
    assert result.records and all("Korg MS-20" in r.extra["labels"] for r in result.records)


def test_reverb_round_trip_with_detail(running: RunningSite) -> None:
    base = running.base_url("reverb")
    pages = list(
        crawl(base, "/api/listings", {"query": "korg", "per_page": "50"}, lambda b, u: reverb.parse_listings(b))
    )
    records = [record for _, result in pages for record in result.records]
    expected = [r for r in running.site.expected_records("reverb") if "korg" in (r.title + r.body).lower()]
    assert [core(r) for r in records] == [core(r) for r in expected]
    assert pages[0][1].next_params == {"page": "2", "per_page": "4", "query": "korg"}
    raw = json.loads(fetch(f"{base}/api/listings?query=korg&per_page=50").body)
    assert raw["_links"]["next"]["href"] == "https://api.reverb.com/api/listings?page=2&per_page=4&query=korg"
    detail = reverb.parse_listing_detail(fetch(f"{base}/api/listings/{records[0].external_id}-any-slug").body)
    assert core(detail) == core(records[0]) and detail.extra["condition"]
    assert fetch(f"{base}/api/listings/99999999").status == 404


def test_reverb_query_filters_and_empty_result(running: RunningSite) -> None:
    base = running.base_url("reverb")
    result = reverb.parse_listings(fetch(f"{base}/api/listings?query=korg+ms-20&per_page=50").body)
    assert result.total == 2 and all("ms-20" in r.title.lower() for r in result.records)
    empty = reverb.parse_listings(fetch(f"{base}/api/listings?query=korg+ps-3300").body)
    assert empty.records == () and empty.total == 0 and empty.next_params is None


def test_ebay_token_and_round_trip(running: RunningSite) -> None:
    base = running.base_url("ebay")
    search = f"{base}/buy/browse/v1/item_summary/search?q=korg"
    assert fetch(search).status == 401, "no token"
    assert fetch(search, headers={"Authorization": "Bearer made-up"}).status == 401
    assert ebay_token(base, secret="wrong").status == 401
    token = ebay.parse_token(ebay_token(base).body)
    assert token.expires_in == 7200 and token.token_type == "Application Access Token"
    auth = {"Authorization": f"Bearer {token.access_token}"}

    pages = list(
        crawl(base, "/buy/browse/v1/item_summary/search", {"q": "korg", "limit": "100", "offset": "0"},
              lambda b, u: ebay.parse_search(b), **auth)
    )  # fmt: skip
    records = [record for _, result in pages for record in result.records]
    listings = [item for item in running.site.listings["ebay"] if "korg" in (item.title + item.body).lower()]
    assert [core(r) for r in records] == [core(expected_record(item, detail=False)) for item in listings]
    assert pages[0][1].next_params == {"q": "korg", "limit": "4", "offset": "4"}
    raw = json.loads(fetch(f"{search}&limit=4&offset=0", headers=auth).body)
    assert raw["next"] == "https://api.ebay.com/buy/browse/v1/item_summary/search?q=korg&limit=4&offset=4"

    by_aspect = next(item for item in listings if item.id == "395500000007")
    fetched = fetch(f"{base}/buy/browse/v1/item/v1%7C395500000007%7C0", headers=auth)
    item = ebay.parse_item(fetched.body)
    assert core(item) == core(expected_record(by_aspect))
    assert item.body.endswith("Serial Number: 439118")
    assert fetch(f"{base}/buy/browse/v1/item/v1%7C395500000007%7C0").status == 401


def test_ebay_empty_search_has_no_item_summaries(running: RunningSite) -> None:
    base = running.base_url("ebay")
    auth = {"Authorization": f"Bearer {ebay.parse_token(ebay_token(base).body).access_token}"}
    raw = json.loads(fetch(f"{base}/buy/browse/v1/item_summary/search?q=korg+ps-3300", headers=auth).body)
    assert raw["total"] == 0 and "itemSummaries" not in raw and "next" not in raw


def test_ebay_expired_token_is_refused() -> None:
    site = FixtureSite({"ebay": [{"title": "Korg MS-20 SN 144571"}]}, token_ttl=0)
    with serve(site) as running:
        base = running.base_url("ebay")
        token = ebay.parse_token(ebay_token(base).body)
        fetched = fetch(
            f"{base}/buy/browse/v1/item_summary/search?q=korg",
            headers={"Authorization": f"Bearer {token.access_token}"},
        )
        assert fetched.status == 401


def test_yahoo_round_trip_with_item_pages(running: RunningSite) -> None:
    base = running.base_url("yahoo_auctions")
    params = {"p": "KORG", "va": "KORG", "exflg": "1", "b": "1", "n": "50", "s1": "new", "o1": "d"}
    pages = list(crawl(base, "/search/search", params, yahoo_auctions.parse_search))
    listings = [
        item for item in running.site.listings["yahoo_auctions"] if "korg" in item.title.lower() + item.body.lower()
    ]
    summaries = [record for _, result in pages for record in result.records]
    assert [core(r) for r in summaries] == [core(expected_record(item, detail=False)) for item in listings]
    detail_urls = [url for _, result in pages for url in result.detail_urls]
    assert detail_urls[0] == f"{base}/jp/auction/{listings[0].id}"
    assert pages[0][1].next_params is not None and pages[0][1].next_params["b"] == "5"
    details = [yahoo_auctions.parse_item(fetch(url).body, url) for url in detail_urls]
    assert [core(r) for r in details] == [core(expected_record(item)) for item in listings]
    assert running.count("/yahoo_auctions/jp/auction/*") == len(listings)


def test_yahoo_pager_links_to_the_real_host(running: RunningSite) -> None:
    body = fetch(f"{running.base_url('yahoo_auctions')}/search/search?p=KORG&b=1&n=4").body.decode()
    assert 'href="https://auctions.yahoo.co.jp/search/search?p=KORG&amp;b=5&amp;n=4"' in body


def test_dealer_round_trip_json_ld_and_microdata(running: RunningSite) -> None:
    base = running.base_url("jsonld")
    pages = list(crawl(base, "/shop/index.html", {"page": "1", "per_page": "4"}, jsonld.parse_product_page))
    urls = [url for _, result in pages for url in result.detail_urls]
    records: list[ListingRecord] = []
    for url in urls:
        local = f"{base}{urlsplit(url).path}"
        result = jsonld.parse_product_page(fetch(local).body, local)
        assert result.errors == ()
        records.extend(result.records)
    expected = running.site.expected_records("jsonld")
    assert [core(r) for r in records] == [core(r) for r in expected]
    assert {r.extra["syntax"] for r in records} == {"json-ld", "microdata"}
    assert len(pages) == 2


def test_shipped_jsonld_config_pages_exist(running: RunningSite) -> None:
    """crawler's config names /products/korg-ms-20.html and /products/korg-mono-poly-mp-4.html."""
    for slug in ("korg-ms-20", "korg-mono-poly-mp-4"):
        assert fetch(f"{running.base_url('jsonld')}/products/{slug}.html").status == 200


# --- faults -------------------------------------------------------------------------------------------


def test_429_once_with_retry_after(running: RunningSite) -> None:
    url = f"{running.base_url('reverb')}/api/listings?query=korg"
    running.inject("/reverb/api/listings", status=429, retry_after=2, times=1)
    first, second = fetch(url), fetch(url)
    assert (first.status, first.headers.get("Retry-After")) == (429, "2")
    assert second.status == 200
    assert [entry.status for entry in running.requests] == [429, 200]


def test_500_always_and_query_patterns(running: RunningSite) -> None:
    base = running.base_url("reverb")
    running.inject("/reverb/api/listings?*page=2*", status=500)
    assert fetch(f"{base}/api/listings?query=korg&page=2").status == 500
    assert fetch(f"{base}/api/listings?query=korg&page=2").status == 500
    assert fetch(f"{base}/api/listings?query=korg&page=1").status == 200
    assert running.count(status=500) == 2


def test_truncated_feed_still_yields_the_first_entries(running: RunningSite) -> None:
    url = f"{running.base_url('matrixsynth')}/feeds/posts/default?max-results=4"
    running.inject("/matrixsynth/feeds/posts/default", truncate=0.8, times=1)
    result = matrixsynth.parse_atom_feed(fetch(url).body)
    assert result.errors and result.errors[0].startswith("feed: XML syntax error")
    assert 1 <= len(result.records) < 4


def test_oversized_and_slow_responses(running: RunningSite) -> None:
    url = f"{running.base_url('reverb')}/api/listings?query=korg"
    running.inject("/reverb/api/listings", pad_to=2_000_000, times=1)
    big = fetch(url)
    assert len(big.body) == 2_000_000 and reverb.parse_listings(big.body).records
    running.inject("/reverb/api/listings", delay=0.3, times=1)
    started = time.monotonic()
    assert fetch(url).status == 200
    assert time.monotonic() - started >= 0.3


# --- data ---------------------------------------------------------------------------------------------


def test_demo_data_covers_every_source_and_scenario() -> None:
    data = load_demo_listings()
    assert set(data) == set(SOURCES) and all(len(items) >= 6 for items in data.values())
    text = json.dumps(data, ensure_ascii=False)
    cues = ("SN 730144", "s/n 186971", "SN 90339", "Seriennummer 141567", "製造番号", "１４５５０２")
    for cue in (*cues, "MS-20 mini", "MS2000", "microKORG", "Roland", "Moog"):
        assert cue in text, cue
    ebay_sellers = [item["seller"] for item in data["ebay"] if "144571" in item["title"]]
    assert ebay_sellers.count("pdx_synth_attic") == 2, "a repost by one seller"
    assert any("144571" in item["title"] for item in data["yahoo_auctions"]), "the same serial elsewhere"


def test_generate_listings_is_deterministic_and_renders() -> None:
    first, again = generate_listings("reverb", 300, seed=7), generate_listings("reverb", 300, seed=7)
    assert first == again and first != generate_listings("reverb", 300, seed=8)
    assert len({item["id"] for item in first}) == 300
    site = FixtureSite({"reverb": first}, page_size=50)
    result = reverb.parse_listings(site.handle("GET", "/api/listings", {"per_page": "50"}, {}, b"").body)
    assert result.total == 300 and len(result.records) == 50 and result.next_params == {"page": "2", "per_page": "50"}


def test_unknown_sources_and_bad_listings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        FixtureSite({"craigslist": []})
    with pytest.raises(ValueError, match="no title"):
        FixtureSite({"reverb": [{"body": "x"}]})
    site = FixtureSite({"reverb": [{"title": "Korg MS-20"}]})
    assert site.handle("GET", "/api/listings", {"page": "two"}, {}, b"").status == 400
