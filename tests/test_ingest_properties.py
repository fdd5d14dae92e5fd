"""Properties of the checks before storage, over generated text and prices (Hypothesis): whatever the text,
what is stored can be encoded by every backend; whatever the price within range, it comes back exactly."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from db.engine import session_scope
from db.ingest import ingest_records
from db.models import Listing
from db.records import PRICE_LIMIT, normalise_record, storable_text
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]

any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=30)


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_storable_text_has_no_nul_and_encodes_as_utf8(value: str) -> None:
    clean = storable_text(value)
    assert "\x00" not in clean
    clean.encode("utf-8")  # a lone surrogate would raise here
    assert len(clean) == len(value)  # one replacement character per bad one, nothing else moves
    if "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        assert clean == value


@settings(max_examples=200, deadline=None)
@given(any_text, any_text)
def test_every_text_field_is_made_storable(title: str, seller: str) -> None:
    record = normalise_record({"source": "s", "url": "u", "title": "t" + title, "seller": seller or None})
    for value in (record.title, record.seller or ""):
        value.encode("utf-8")
        assert "\x00" not in value


prices = st.decimals(min_value=-PRICE_LIMIT + Decimal("0.01"), max_value=PRICE_LIMIT - Decimal("0.01"), places=2)


def test_prices_round_trip_exactly(engine: Engine, rules: Rules) -> None:
    """On SQLite (text) and PostgreSQL (NUMERIC(18, 2)) alike, a price in range comes back as it went in."""
    counter = iter(range(10**9))

    @settings(max_examples=40, deadline=None)
    @given(prices)
    def round_trip(price: Decimal) -> None:
        key = str(next(counter))
        record = {"source": "s", "url": key, "external_id": key, "title": "t", "price": str(price)}
        with session_scope(engine) as session:
            ingest_records(session, [record], rules)
        with session_scope(engine) as session:
            stored = session.scalar(select(Listing.price).where(Listing.external_id == key))
        assert stored == price and str(stored) == f"{price:.2f}"

    round_trip()
