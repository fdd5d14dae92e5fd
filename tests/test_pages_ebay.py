"""eBay Browse API extractors on the project's fixture files: search paging, getItem aspects, OAuth token."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.pages import ebay

FIXTURES = Path(__file__).parent / "fixtures"
DIR = FIXTURES / "ebay"


def test_next_params_come_from_next_url() -> None:
    result = ebay.parse_search((DIR / "search_page1.json").read_bytes())
    assert result.next_params == {
        "q": "korg ms-20",
        "category_ids": "38071",
        "filter": "conditionIds:{3000}",
        "limit": "3",
        "offset": "3",
    }


def test_last_page_and_empty_result() -> None:
    assert ebay.parse_search((DIR / "search_page2_last.json").read_bytes()).next_params is None
    empty = ebay.parse_search((DIR / "search_empty.json").read_bytes())
    assert empty.records == () and empty.total == 0 and empty.errors == ()


def test_serial_aspect_reaches_the_body() -> None:
    record = ebay.parse_item((DIR / "get_item.json").read_bytes())
    assert record.body.endswith("Serial Number: 144571")
    assert record.extra["aspects"]["Serial Number"] == "144571"
    assert record.external_id == "395500000001" and record.seller == "pdx_synth_attic"


def test_token() -> None:
    token = ebay.parse_token((DIR / "token.json").read_bytes())
    assert token == ebay.EbayToken("v^1.1#i^1#p^1#I^3#r^0#f^0#t^FAKE-TEST-TOKEN", 7200, "Application Access Token")
    with pytest.raises(ValueError, match="client authentication failed"):
        ebay.parse_token((DIR / "token_error.json").read_bytes())


@pytest.mark.parametrize("text", ["", "nope", "[1]", '{"itemSummaries": {}}'])
def test_unreadable_search_is_an_error(text: str) -> None:
    result = ebay.parse_search(text)
    assert result.records == ()
    assert result.errors or text == '{"itemSummaries": {}}'
