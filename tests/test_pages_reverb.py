"""Reverb API extractors on the project's fixture files: both listing shapes, paging, empty and detail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.pages import reverb

FIXTURES = Path(__file__).parent / "fixtures"
DIR = FIXTURES / "reverb"


def test_next_params_come_from_links_next() -> None:
    result = reverb.parse_listings((DIR / "listings_page1.json").read_bytes())
    assert result.next_params == {
        "page": "2",
        "per_page": "3",
        "product_type": "keyboards-and-synths",
        "query": "korg",
    }
    assert result.total == 5


def test_last_page_and_empty_page_have_no_next() -> None:
    assert reverb.parse_listings((DIR / "listings_page2_last.json").read_bytes()).next_params is None
    empty = reverb.parse_listings((DIR / "listings_empty.json").read_bytes())
    assert empty.records == () and empty.total == 0 and empty.next_params is None and empty.errors == ()


def test_both_condition_shapes() -> None:
    new = reverb.parse_listings((DIR / "listings_page1.json").read_bytes()).records[0]
    old = reverb.parse_listings((DIR / "listings_2020_shape.json").read_bytes()).records[0]
    assert new.extra["condition"] == "Excellent" and new.extra["condition_slug"] == "excellent"
    assert old.extra["condition"] == "Good" and old.extra["condition_slug"] == "good"
    assert old.posted_at == "2020-09-28T11:07:22-05:00", "published_at null falls back to created_at"


def test_detail_has_all_photos_and_location() -> None:
    record = reverb.parse_listing_detail((DIR / "listing_detail_2026.json").read_bytes())
    assert len(record.images) == 3 and all("t_supersize" in url for url in record.images)
    assert record.extra["location"] == {"country_code": "US", "region": "IL", "locality": "Chicago"}


def test_bad_listing_is_reported_beside_the_good_ones() -> None:
    result = reverb.parse_listings((DIR / "listings_2020_shape.json").read_bytes())
    assert [r.external_id for r in result.records] == ["33100777", "33100779"]
    assert result.errors == (
        "listing 2 (id 33100778): no title",
        "listing 3: listing is not an object but str",
    )


@pytest.mark.parametrize("text", ["", "{", "[]", json.dumps({"listings": 5}), "[" * 100_000])
def test_unreadable_page_is_an_error(text: str) -> None:
    result = reverb.parse_listings(text)
    assert result.records == () and result.errors


def test_unreadable_detail_raises_value_error() -> None:
    with pytest.raises(ValueError, match="no title"):
        reverb.parse_listing_detail(json.dumps({"id": 1}))
