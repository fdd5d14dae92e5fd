"""Yahoo! Auctions extractors on the project's fixtures: search cards, paging, both item page variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.pages import yahoo_auctions

FIXTURES = Path(__file__).parent / "fixtures"
DIR = FIXTURES / "yahoo_auctions"
REAL = "https://auctions.yahoo.co.jp/search/search?p=KORG+MS-20&va=KORG+MS-20&exflg=1&b=1&n=50"


def test_search_cards_gather_attributes_from_children() -> None:
    result = yahoo_auctions.parse_search((DIR / "search_pager.html").read_bytes(), REAL)
    first = result.records[0]
    assert (first.external_id, first.seller, first.price, first.currency) == (
        "x1100000001",
        "synth_shop_kyoto",
        "98000",
        "JPY",
    )
    assert result.detail_urls[0] == "https://auctions.yahoo.co.jp/jp/auction/x1100000001"
    assert result.next_params == {"p": "KORG MS-20", "va": "KORG MS-20", "exflg": "1", "b": "51", "n": "50"}


def test_detail_urls_follow_the_mount_the_search_came_from() -> None:
    page_url = "http://127.0.0.1:9/yahoo_auctions/search/search?p=KORG&b=1&n=50"
    result = yahoo_auctions.parse_search((DIR / "search_pager.html").read_bytes(), page_url)
    assert result.detail_urls[0] == "http://127.0.0.1:9/yahoo_auctions/jp/auction/x1100000001"
    assert result.records[0].url == "https://auctions.yahoo.co.jp/jp/auction/x1100000001"


def test_last_page_and_empty_results() -> None:
    last = yahoo_auctions.parse_search((DIR / "search_last_page.html").read_bytes(), REAL)
    assert last.next_params is None and last.errors == ("card 2: no auction id",)
    empty = yahoo_auctions.parse_search((DIR / "search_empty.html").read_bytes(), REAL)
    assert empty.records == () and empty.next_params is None and empty.total == 0


def test_both_item_variants_give_jst_times() -> None:
    legacy = yahoo_auctions.parse_item(
        (DIR / "item_pagedata.html").read_bytes(), "https://auctions.yahoo.co.jp/jp/auction/x1100000001"
    )
    modern = yahoo_auctions.parse_item(
        (DIR / "item_next_data.html").read_bytes(), "https://auctions.yahoo.co.jp/jp/auction/x1100000003"
    )
    assert legacy.posted_at == "2024-03-15T21:00:00+09:00" and legacy.extra["page_variant"] == "pageData"
    assert modern.posted_at == "2024-03-16T20:00:00+09:00" and modern.extra["page_variant"] == "next_data"
    assert "製造番号：144571" in legacy.body and "７８０１５２" in modern.body


def test_page_data_is_parsed_not_evaluated() -> None:
    html = '<script>var pageData = {"items": {"productID": "x1", "productName": "t"}}; alert(1);</script>'
    record = yahoo_auctions.parse_item(html, "https://auctions.yahoo.co.jp/jp/auction/x1234567")
    assert record.external_id == "x1" and record.title == "t"


@pytest.mark.parametrize("html", ["", "<html></html>"])
def test_item_page_without_auction_raises(html: str) -> None:
    with pytest.raises(ValueError):
        yahoo_auctions.parse_item(html, "https://example.test/")
