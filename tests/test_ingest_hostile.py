"""Hostile input through `ingest_jsonl` on SQLite and PostgreSQL: bad bytes, NUL, lone surrogates, over-long
fields, out-of-range prices and times, deep nesting, huge fields, and records the database itself refuses.
Each costs only its own line; the lines around it are stored (issues 13.1–13.3, 17.6, 17.7)."""

from __future__ import annotations

import hashlib
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixtures.storage.helpers import NOW, RecordFactory, refuse_poison
from sqlalchemy import Engine, select, text

from db.engine import session_scope
from db.ingest import ingest_jsonl
from db.models import Listing
from pipeline.analyse import MAX_TITLE
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def _stored(engine: Engine) -> dict[str, Listing]:
    with session_scope(engine) as session:
        return {listing.url: listing for listing in session.scalars(select(Listing))}


def test_invalid_utf8_latin1_and_bom_cost_only_their_lines(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    good = [make_record(title=f"Korg MS-10 s/n {134400 + i}") for i in range(3)]
    latin1 = json.dumps(make_record(title="Korg MS-20 schöner Zustand"), ensure_ascii=False).encode("latin-1")
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + _line(good[0])  # a BOM on line 1 is not an error
        + b'{"title": "Korg \xff MS-20"}\n'
        + _line(good[1])
        + latin1 + b"\n"
        + _line(good[2])
    )  # fmt: skip
    summary = ingest_jsonl(path, engine, rules, batch_size=2, now=NOW)
    where = latin1.index("ö".encode("latin-1")) + 1
    assert summary.errors == [
        "line 2: not UTF-8 text (byte 0xff at byte 17)",
        f"line 4: not UTF-8 text (byte 0xf6 at byte {where})",
    ]
    assert set(_stored(engine)) == {r["url"] for r in good}


def test_binary_stdin_stream_is_read_the_same(engine: Engine, rules: Rules, make_record: RecordFactory) -> None:
    record = make_record()
    stream = io.BytesIO(_line(record) + b"\xff\xfe\n" + _line(make_record()))
    summary = ingest_jsonl(stream, engine, rules, now=NOW)
    assert summary.errors == ["line 2: not UTF-8 text (byte 0xff at byte 1)"]
    assert summary.listings_new == 2


def test_nul_and_lone_surrogates_are_replaced_alike_on_every_backend(
    engine: Engine, rules: Rules, make_record: RecordFactory
) -> None:
    nul = make_record(title="Korg MS-20\u0000 s/n 143210", body="a\u0000b", extra={"k\u0000": "v\u0000"})
    lone = make_record(title="Korg MS-10 s/n 134458", seller="\ud800seller", images=["https://img/\udfff.jpg"])
    stream = io.BytesIO(_line(nul) + _line(lone))  # json.dumps writes them as \u0000 and \ud800
    summary = ingest_jsonl(stream, engine, rules, batch_size=10, now=NOW)
    assert summary.errors == []
    assert summary.listings_new == 2
    assert "line 1: title: NUL or lone surrogate replaced by U+FFFD; stored" in summary.notes
    assert "line 2: seller: NUL or lone surrogate replaced by U+FFFD; stored" in summary.notes
    stored = _stored(engine)
    assert stored[nul["url"]].title == "Korg MS-20\ufffd s/n 143210"
    assert stored[nul["url"]].body == "a\ufffdb"
    assert stored[nul["url"]].extra == {"k\ufffd": "v\ufffd"}
    assert stored[lone["url"]].seller == "\ufffdseller"
    assert stored[lone["url"]].images == ["https://img/\ufffd.jpg"]


def test_over_long_fields_hashed_clipped_or_refused(engine: Engine, rules: Rules, make_record: RecordFactory) -> None:
    long_id = make_record(external_id="x" * 300)
    long_url = make_record(url="https://example.test/" + "u" * 400, external_id=None)
    long_seller = make_record(seller="s" * 300)
    long_currency = make_record(currency="DOLLARS!!")
    long_source = make_record(source="s" * 65)
    after = make_record()
    lines = [long_id, long_url, long_seller, long_currency, long_source, after]
    summary = ingest_jsonl(io.BytesIO(b"".join(map(_line, lines))), engine, rules, batch_size=100, now=NOW)
    assert summary.errors == [
        "line 4: currency longer than 8 characters: 'DOLLARS!!'",
        "line 5: source longer than 64 characters",
    ]
    stored = _stored(engine)
    assert set(stored) == {long_id["url"], long_url["url"], long_seller["url"], after["url"]}
    assert stored[long_id["url"]].external_id == "sha256:" + hashlib.sha256(b"x" * 300).hexdigest()
    assert stored[long_url["url"]].external_id.startswith("sha256:")
    assert stored[long_seller["url"]].seller == "s" * 255
    # The same key again updates, never duplicates.
    again = ingest_jsonl(io.BytesIO(_line(long_id)), engine, rules, now=NOW)
    assert (again.listings_new, again.listings_unchanged) == (0, 1)


def test_prices_are_exact_decimals_and_out_of_range_ones_refused(
    engine: Engine, rules: Rules, make_record: RecordFactory
) -> None:
    exact_text = make_record(price="123456789012345.99")
    exact_number = make_record(price=0)
    lines = [
        _line(exact_text),
        _line(exact_number).replace(b'"price": 0', b'"price": 99999999999999.99'),
        _line(make_record(price=0)).replace(b'"price": 0', b'"price": 1e400'),
        _line(make_record(price="1e16")),
        _line(make_record(price="NaN")),
        _line(make_record(price="12.345")),
    ]
    summary = ingest_jsonl(io.BytesIO(b"".join(lines)), engine, rules, now=NOW)
    assert [e.split(":")[0] for e in summary.errors] == ["line 3", "line 4", "line 5"]
    assert "price out of range" in summary.errors[0]
    assert "line 6: price: 12.345 rounded to 12.34; stored" in summary.notes
    prices = {listing.price for listing in _stored(engine).values()}
    assert prices == {Decimal("123456789012345.99"), Decimal("99999999999999.99"), Decimal("12.34")}


def test_lines_that_used_to_crash_are_one_reported_line_each(
    engine: Engine, rules: Rules, make_record: RecordFactory
) -> None:
    before, after = make_record(), make_record()
    deep = b"[" * 200_000 + b"]" * 200_000
    lines = [
        _line(before),
        deep + b"\n",
        _line(make_record(posted_at="9999-12-31T23:59:59-01:00")),
        _line(make_record(title="\ud800")),  # a lone surrogate as the whole title: replaced, stored
        _line(after),
    ]
    summary = ingest_jsonl(io.BytesIO(b"".join(lines)), engine, rules, now=NOW)
    assert summary.errors == [
        "line 2: not JSON (nested too deeply)",
        "line 3: posted_at out of range: '9999-12-31T23:59:59-01:00'",
    ]
    assert summary.listings_new == 3
    assert {before["url"], after["url"]} <= set(_stored(engine))


def test_a_record_the_database_refuses_is_isolated_from_its_batch(
    engine: Engine, rules: Rules, make_record: RecordFactory
) -> None:
    """A trigger in the real database refuses one title (as a backend refuses what no check foresaw)."""
    refuse_poison(engine)
    records = [make_record(title=f"Korg MS-10 s/n {134400 + i}") for i in range(20)]
    records[6]["title"] = "Korg MS-20 POISON"
    records[13]["title"] = "POISON again"
    summary = ingest_jsonl(io.BytesIO(b"".join(map(_line, records))), engine, rules, batch_size=20, now=NOW)
    assert [e.split(" (")[0] for e in summary.errors] == [
        "line 7: refused by the database",
        "line 14: refused by the database",
    ]
    assert "poisoned listing" in summary.errors[0] and summary.errors[0].endswith("; not stored")
    assert summary.listings_new == 18
    assert summary.instruments_new == 18
    assert len(_stored(engine)) == 18


def test_a_50_mb_title_is_stored_whole_and_its_cut_is_recorded(
    engine: Engine, rules: Rules, make_record: RecordFactory
) -> None:
    title = "Korg MS-20 s/n 143210 " + "Korg MS-20 Polysix Mono/Poly " * (50 * 1024 * 1024 // 29)
    huge = make_record(title=title)
    summary = ingest_jsonl(io.BytesIO(_line(huge) + _line(make_record())), engine, rules, now=NOW)
    assert summary.errors == []
    assert summary.listings_new == 2
    cut = f"title: first {MAX_TITLE} of {len(title)} characters read"
    assert f"line 1: {cut} by the analyser; stored in full" in summary.notes
    stored = _stored(engine)[huge["url"]]
    assert len(stored.title) == len(title)
    assert stored.analysis_cut == [cut]
    # A later, shorter text is no longer cut: the note goes.
    ingest_jsonl(io.BytesIO(_line({**huge, "title": "Korg MS-20 s/n 143210"})), engine, rules, now=NOW)
    assert _stored(engine)[huge["url"]].analysis_cut is None


def test_the_price_migration_keeps_existing_prices(db_url: str) -> None:
    """Prices stored before 0006_ingest (a float on SQLite, NUMERIC(14, 2) on PostgreSQL) come through exact."""
    from alembic.command import downgrade

    from db.engine import make_engine
    from db.migrate import alembic_config, upgrade

    upgrade(db_url, "0005")
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            session.execute(text("INSERT INTO sources (name) VALUES ('old')"))
            session.execute(
                text(
                    "INSERT INTO listings (source_id, external_id, url, title, body, price, first_seen, last_seen, "
                    "images, content_hash, record_hash, extra) SELECT id, :key, :url, 't', '', :price, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '[]', 'c', 'r', '{}' FROM sources"
                ),
                [{"key": k, "url": k, "price": p} for k, p in (("a", 850), ("b", 1234.5), ("c", None))],
            )
        upgrade(db_url)
        with session_scope(engine) as session:
            prices = dict(session.execute(select(Listing.external_id, Listing.price)).all())
        assert prices == {"a": Decimal("850.00"), "b": Decimal("1234.50"), "c": None}
        assert str(prices["a"]) == "850.00"
        with engine.begin() as connection:  # and back down, as the lead's re-chaining may need
            config = alembic_config()
            config.attributes["connection"] = connection
            downgrade(config, "0005")
    finally:
        engine.dispose()
