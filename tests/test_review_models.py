"""A model's page at any size: points while few, counts per block and month beyond MODEL_POINTS_LIMIT with the
raw serials a click away (keyset-paged), the estimate equal to `korgwatch stats`'s, and every read through
an index (EXPLAIN QUERY PLAN on SQLite, as tests/test_review_queries.py checks the queue)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
from fixtures.storage.helpers import Ingest, RecordFactory
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from db.engine import session_scope
from db.models import FlagCount, RegisterEntry
from db.queries import stats
from pipeline.rules import Rules
from review import model_queries
from review.app import ReviewConfig, create_app
from review.model_queries import OUTSIDE, SerialFilter, block_stats, cells_statement, serials_page, serials_statement

pytest_plugins = ["fixtures.storage.builders"]

# MS-20 blocks: 14nnnn, 439nnn. Serial, posted month (day 1..).
SIGHTINGS = [
    ("141001", "2026-01"), ("141002", "2026-01"), ("141003", "2026-02"), ("439001", "2026-01"),
    ("439002", "2026-03"), ("439003", "2026-03"), ("439004", "2026-03"), ("730144", "2026-02"),
    ("152817", "2026-03"), ("141001", "2026-03"),  # a second sighting: first seen stays 2026-01
]  # fmt: skip


@pytest.fixture
def store(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> Engine:
    records = [
        make_record(title=f"Korg MS-20 s/n {serial}", posted_at=f"{month}-{1 + i:02d}T10:00:00+00:00")
        for i, (serial, month) in enumerate(SIGHTINGS)
    ]
    ingest(*records)
    with session_scope(engine) as session:
        session.add(RegisterEntry(model="MS-20", serial="141900", url="https://example.com/register"))
    return engine


def expected_cells() -> dict[tuple[int, str], int]:
    """(block index, month) -> instruments first seen then, worked out from SIGHTINGS by hand's rules."""
    first: dict[str, str] = {}
    for serial, month in SIGHTINGS:
        first[serial] = min(first.get(serial, month), month)
    cells: dict[tuple[int, str], int] = {}
    for serial, month in first.items():
        block = 0 if serial.startswith("14") else 1 if serial.startswith("439") else 2
        cells[(block, month)] = cells.get((block, month), 0) + 1
    return cells


def test_block_stats_equal_korgwatch_stats(store: Engine, rules: Rules) -> None:
    with session_scope(store) as session:
        assert block_stats(session, rules.model("MS-20")) == stats(session, rules, model="MS-20")
        assert block_stats(session, rules.model("MS-10")) == stats(session, rules, model="MS-10") == []


def test_cells_count_instruments_per_block_and_month(store: Engine, rules: Rules) -> None:
    with session_scope(store) as session:
        cells = model_queries.model_cells(session, rules.model("MS-20"))
        totals = model_queries.model_totals(session, "MS-20")
    assert {(c.block, c.month): c.count for c in cells} == expected_cells()
    assert totals.instruments == sum(expected_cells().values())
    # Flagged: 730144 (fits Poly-61) and 152817 (outside every MS-20 block) await review.
    assert sum(c.flagged for c in cells) == totals.flagged == 2


@pytest.mark.parametrize(
    "where", [SerialFilter(), SerialFilter(block="0"), SerialFilter(block=OUTSIDE, month="2026-03")]
)
def test_serial_pages_cover_each_serial_once_in_order(store: Engine, rules: Rules, where: SerialFilter) -> None:
    rule = rules.model("MS-20")
    with session_scope(store) as session:
        whole, none = serials_page(session, rule, where, limit=1000)
        assert none is None
        walked: list[Any] = []
        after = None
        while True:
            page, after = serials_page(session, rule, where, after, limit=2)
            walked += page
            if after is None:
                break
    assert [p.instrument_id for p in walked] == [p.instrument_id for p in whole]
    assert [(p.first_seen, p.instrument_id) for p in walked] == sorted((p.first_seen, p.instrument_id) for p in walked)
    index = where.block_index(rule)
    wanted = {
        s
        for s, m in SIGHTINGS
        if (index is None or (0 if s.startswith("14") else 1 if s.startswith("439") else 2) == index)
    }
    if where.month:
        wanted = {s for s in wanted if min(m for t, m in SIGHTINGS if t == s) == where.month}
    assert {p.serial for p in walked} == wanted


def test_serial_filter_refuses_garbage(rules: Rules) -> None:
    for bad in ({"block": "x"}, {"month": "2026-13"}, {"month": "March"}):
        with pytest.raises(ValueError):
            SerialFilter(**bad)
    with pytest.raises(ValueError):
        SerialFilter(block="7").block_index(rules.model("MS-20"))


def test_dense_model_page_links_bars_to_their_serials(
    store: Engine, rules: Rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_queries, "MODEL_POINTS_LIMIT", 3)  # this store's 9 instruments: counts, not points
    url = store.url.render_as_string(hide_password=False)
    client = TestClient(create_app(ReviewConfig(url, rules, reviewer="tester"), engine=store))
    page = client.get("/models/MS-20").text
    assert "<circle" not in page and 'class="bar"' in page
    assert "9 serials seen" in page and "2 awaiting review" in page
    bars = {
        unescape(href): title
        for href, title in re.findall(r'<a href="([^"]+)"><g class="bar">.*?<title>([^<]*)</title>', page)
    }
    assert bars["/serials?model=MS-20&block=1&month=2026-03"] == "3 first seen 2026-03"
    assert bars["/serials?model=MS-20&block=outside&month=2026-03"] == "1 first seen 2026-03 (1 awaiting review)"
    assert len(bars) == len(expected_cells())
    listed = client.get("/serials?model=MS-20&block=1&month=2026-03")
    assert listed.status_code == 200
    assert re.findall(r'<td class="serial"><a href="/listing/\d+">(\d+)</a>', listed.text) == [
        "439002",
        "439003",
        "439004",
    ]
    assert "Units made (estimate)" in page and "439nnn" in page
    assert client.get("/serials?model=MS-20&block=9").status_code == 400
    assert client.get("/serials?model=MS-20&month=soon").status_code == 400
    assert client.get("/serials?model=MS-20&after=garbage").status_code == 400
    assert client.get("/serials?model=Nope").status_code == 404


def _plan(engine: Engine, stmt: Any) -> str:
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        return "\n".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def test_model_reads_walk_the_model_index(sqlite_engine: Engine, rules: Rules) -> None:
    rule = rules.model("MS-20")
    after = (datetime(2026, 3, 1, tzinfo=UTC), 5)
    plans = {
        "cells": _plan(sqlite_engine, cells_statement(rule, "sqlite")),
        "points": _plan(sqlite_engine, model_queries.points_statement("MS-20", 2000)),
        "serials": _plan(
            sqlite_engine, serials_statement(rule, "sqlite", SerialFilter(block="1", month="2026-03"), after, 101)
        ),
    }
    for name, text in plans.items():
        print(name, text, sep="\n")  # shown with -s
        assert "ix_model_serials_model_first_seen (model=?" in text, name
        assert "appearances" not in text and "SCAN model_serials" not in text, name
    assert "TEMP B-TREE" not in plans["points"] and "TEMP B-TREE" not in plans["serials"]
    assert "first_seen>" in plans["serials"] or "first_seen<" in plans["serials"]  # month and cursor bound the range
    counts = _plan(sqlite_engine, select(FlagCount.code).where(FlagCount.status == "open"))
    assert "flags " not in counts + " " and "flag_counts" in counts
