"""Record checks and hashes (a moved hash would make every stored listing look edited on the next crawl),
and the JSON text the bulk writer stores, which must be json.dumps's to the byte."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db.jsontext import dumps, dumps_or_null
from db.records import RecordError, normalise_record, parse_datetime, record_hash

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)

LISTING = {
    "source": "reverb",
    "url": "https://reverb.com/item/7-korg-ms-20",
    "external_id": "7",
    "title": "Korg MS-20 s/n 143210",
    "body": "Serviced.",
    "seller": "Synth Shop",
    "posted_at": "2024-03-01T10:00:00Z",
    "price": "850",
    "currency": "USD",
    "images": ["https://img/1.jpg"],
    "extra": {"condition": "Used"},
}


def test_record_hash_does_not_move_between_versions() -> None:
    # Written by korgwatch 0.1 for this listing: a changed formula would make every stored listing look
    # edited on the next crawl.
    expected = "96e65998a2b7cf10438a1f17fe73e6443d9a22b327a76c60aeaa435c5aa8ab2b"
    assert normalise_record(LISTING).record_hash == expected


def reference_record_hash(
    url: str, title: str, body: str, seller: str | None, posted_at: datetime | None, price: Decimal | None,
    currency: str | None, images: tuple[str, ...], extra: dict[str, Any],
) -> str:  # fmt: skip
    """The formula stored hashes were made with, verbatim: record_hash writes the same JSON text by hand."""
    fields = [
        url, title, body, seller, posted_at and posted_at.isoformat(), price is not None and f"{price:.2f}",
        currency, list(images), extra,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


@settings(max_examples=400, deadline=None)
@given(
    text,
    text,
    text,
    st.none() | text,
    st.none() | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9),
    st.none() | text,
    st.lists(text, max_size=4).map(tuple),
    st.dictionaries(text, json_values, max_size=4),
)
def test_record_hash_is_the_stored_formula(
    url: str, title: str, body: str, seller: str | None, posted_at: datetime | None, price: Decimal | None,
    currency: str | None, images: tuple[str, ...], extra: dict[str, Any],
) -> None:  # fmt: skip
    fields = (url, title, body, seller, posted_at, price, currency, images, extra)
    assert record_hash(*fields) == reference_record_hash(*fields)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("url", "https://reverb.com/item/8"),
        ("title", "Korg MS-20 s/n 143211"),
        ("body", "Serviced!"),
        ("seller", "synth shop 2"),
        ("posted_at", "2024-03-01T10:00:01Z"),
        ("price", "850.01"),
        ("currency", "EUR"),
        ("images", ["https://img/2.jpg"]),
        ("extra", {"condition": "Mint"}),
    ],
)
def test_record_hash_sees_every_stored_field(name: str, value: Any) -> None:
    base = normalise_record(LISTING)
    changed = normalise_record({**LISTING, name: value})
    assert changed.record_hash != base.record_hash
    assert (changed.content_hash != base.content_hash) == (name in ("title", "body"))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_text_is_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value)
    assert dumps_or_null(value) == (None if value is None else json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(text, text, max_size=5), st.lists(text, max_size=5))
def test_json_text_of_strings_is_json_dumps(extra: dict[str, str], images: list[str]) -> None:
    assert dumps(extra) == json.dumps(extra)
    assert dumps(images) == json.dumps(images)


def test_json_text_of_mixed_list_falls_back_to_the_encoder() -> None:
    assert dumps(["a", 1, None, "é"]) == json.dumps(["a", 1, None, "é"])


def test_record_from_a_dict_converts_every_field() -> None:
    record = normalise_record(
        {
            "source": "reverb",
            "url": "https://reverb.com/item/1",
            "external_id": 1,
            "title": "Korg MS-20",
            "posted_at": "2024-01-02T03:04:05+02:00",
            "price": 1234.5,
            "images": ["a", "b", "a"],
            "extra": {"k": "v"},
        }
    )
    assert record.external_id == "1"
    assert record.posted_at == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert record.price == Decimal("1234.5")
    assert record.images == ("a", "b")  # duplicates dropped, order kept
    assert record.body == "" and record.seller is None and record.currency is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (" 2024-01-02T03:04:05 ", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05-05:00", datetime(2024, 1, 2, 8, 4, 5, tzinfo=UTC)),
    ],
)
def test_times_become_aware_utc(value: str, expected: datetime) -> None:
    parsed = parse_datetime(value)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


def test_an_offset_time_is_converted_not_relabelled() -> None:
    parsed = parse_datetime("2024-06-01T12:00:00+09:00")
    assert parsed.tzinfo is UTC and parsed == datetime(2024, 6, 1, 12, tzinfo=timezone(timedelta(hours=9)))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"source": "s", "title": "t"}, "no url"),
        ({"source": "s", "url": "u", "title": 5}, "title must be a string, not int"),
        ({"source": "s", "url": "u", "title": "t", "price": True}, "price must be a decimal string, not bool"),
        ({"source": "s", "url": "u", "title": "t", "price": "Infinity"}, "price is not a number"),
        ({"source": "s", "url": "u", "title": "t", "price": "NaN"}, "price is not a number"),
        ({"source": "s", "url": "u", "title": "t", "images": ["a", 2]}, "images must be a list of URL strings"),
        ({"source": "s", "url": "u", "title": "t", "images": "a"}, "images must be a list of URL strings"),
        ({"source": "s", "url": "u", "title": "t", "posted_at": "soon"}, "posted_at is not an ISO-8601 time"),
        ({"source": "s", "url": "u", "title": "t", "extra": ["x"]}, "extra must be an object, not list"),
        (["not", "a", "dict"], "a record must be a JSON object, not list"),
    ],
)
def test_bad_records_name_the_field(record: Any, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        normalise_record(record)
