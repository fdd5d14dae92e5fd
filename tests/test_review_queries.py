"""The review page's own queries and presentation helpers: keyset paging that stays on the index (the plan is
checked on SQLite at scale), the fit sentence, highlighted segments, safe links and the model chart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, text

from db.engine import make_engine, session_factory
from db.migrate import upgrade_engine
from db.models import Flag, Listing, Source
from pipeline.rules import Rules
from review.present import Span, model_chart, safe_url, segments
from review.queries import (
    QueueFilters,
    decode_cursor,
    encode_cursor,
    fit_sentence,
    queue_page,
    queue_statement,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CODES = ("serial_outside_blocks", "serial_wrong_length", "title_body_mismatch")


def fill(engine: Engine, n: int) -> None:
    """`n` listings with one flag each (a third of them decided), straight through Core: fast enough for scale."""
    with engine.begin() as conn:
        conn.execute(insert(Source), [{"name": "reverb"}, {"name": "ebay"}])
        batch = 20_000
        for start in range(0, n, batch):
            ids = range(start + 1, min(n, start + batch) + 1)
            conn.execute(
                insert(Listing),
                [
                    {
                        "id": i,
                        "source_id": 1 + i % 2,
                        "external_id": str(i),
                        "url": f"https://reverb.com/item/{i}",
                        "title": f"Korg MS-20 SN {730000 + i % 9999}",
                        "body": "",
                        "first_seen": T0,
                        "last_seen": T0,
                        "images": [],
                        "content_hash": "x",
                        "record_hash": "x",
                        "extra": {},
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(Flag),
                [
                    {
                        "id": i,
                        "listing_id": i,
                        "code": CODES[i % 3],
                        "details": {"message": f"flag {i}"},
                        "status": "confirmed" if i % 3 == 0 else "open",
                        "created_at": T0 + timedelta(minutes=i // 4),  # four flags per instant: ties happen
                    }
                    for i in ids
                ],
            )
        conn.exec_driver_sql("ANALYZE")


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    upgrade_engine(eng)
    yield eng
    eng.dispose()


def plan(engine: Engine, filters: QueueFilters, after: tuple[datetime, int] | None) -> str:
    sql = str(queue_statement(filters, after, 51).compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        return "\n".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


@pytest.mark.parametrize(
    "filters",
    [
        QueueFilters(),
        QueueFilters(code="serial_wrong_length"),
        QueueFilters(source="ebay"),
        QueueFilters(model="MS-20", code="serial_outside_blocks", source="reverb"),
        QueueFilters(status="dismissed"),
    ],
    ids=["all", "code", "source", "model+code+source", "status"],
)
@pytest.mark.parametrize("paged", [False, True], ids=["first-page", "later-page"])
def test_queue_walks_the_status_created_at_index(engine: Engine, filters: QueueFilters, paged: bool) -> None:
    fill(engine, 3000)
    after = (T0 + timedelta(minutes=300), 1200) if paged else None
    text_plan = plan(engine, filters, after)
    print(text_plan)  # shown with -s: the plan the test accepts
    assert "USING INDEX ix_flags_status_created_at (status=?" in text_plan
    assert "TEMP B-TREE" not in text_plan  # no sort: rows come off the index in queue order
    assert "SCAN flags" not in text_plan and "SCAN listings" not in text_plan
    if paged:
        assert "created_at<" in text_plan  # the cursor bounds the index range: no OFFSET, no skipping


@pytest.mark.slow
def test_deep_page_is_as_fast_as_the_first(engine: Engine) -> None:
    fill(engine, 60_000)
    with session_factory(engine)() as session:
        started = time.perf_counter()
        first, cursor = queue_page(session, QueueFilters())
        first_ms = (time.perf_counter() - started) * 1000
        deep = (T0 + timedelta(minutes=1000), 4001)  # near the end of the queue, newest first
        started = time.perf_counter()
        rows, _ = queue_page(session, QueueFilters(), deep)
        deep_ms = (time.perf_counter() - started) * 1000
    assert len(first) == len(rows) == 50 and cursor
    assert rows[0].flag_id < 4001
    assert deep_ms < 250 and first_ms < 250, (first_ms, deep_ms)


def test_pages_cover_every_open_flag_once_in_order(engine: Engine) -> None:
    fill(engine, 1000)
    seen: list[tuple[datetime, int]] = []
    with session_factory(engine)() as session:
        after = None
        while True:
            rows, cursor = queue_page(session, QueueFilters(), after, 37)
            seen += [(r.created_at, r.flag_id) for r in rows]
            if cursor is None:
                break
            after = decode_cursor(cursor)
    with engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM flags WHERE status = 'open'")).scalar_one()
    assert len(seen) == expected == len(set(seen))
    assert seen == sorted(seen, reverse=True)


def test_cursor_round_trip_and_garbage() -> None:
    when = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(when, 42)) == (when, 42)
    for bad in ("", "!!!", "bm90IGEgY3Vyc29y", encode_cursor(when, 1)[:-3]):
        with pytest.raises(ValueError):
            decode_cursor(bad)


def test_filters_refuse_unknown_status() -> None:
    with pytest.raises(ValueError):
        QueueFilters(status="everything")
    assert QueueFilters(code="x", status="dismissed").as_params() == {"code": "x", "status": "dismissed"}


@pytest.mark.parametrize(
    ("serial", "model", "sentence"),
    [
        ("730144", "MS-20", "730144 fits Poly-61 (7nnnnn), not MS-20 (14nnnn, 439nnn)"),
        ("439057", "MS-20", "439057 fits MS-20 (439nnn)"),
        ("999999", "MS-20", "999999 fits no block of MS-20 (14nnnn, 439nnn) nor of any other model"),
        ("142817", "Nope", "142817: Nope is not a model the rules know"),
    ],
)
def test_fit_sentence(rules: Rules, serial: str, model: str, sentence: str) -> None:
    assert fit_sentence(serial, model, rules) == sentence


def test_segments_mark_spans_and_ignore_stale_ones() -> None:
    text_ = "Korg MS-20 SN 730144, serial 730144"
    spans = [
        Span(14, 20, "recorded", "MS-20 serial"),
        Span(14, 20, "candidate", "duplicate of the recorded span"),
        Span(29, 35, "candidate", "candidate"),
        Span(30, 90, "candidate", "stale: past the end"),
        Span(5, 3, "candidate", "backwards"),
    ]
    out = segments(text_, spans)
    assert "".join(s.text for s in out) == text_
    assert [(s.text, s.span.kind) for s in out if s.span] == [("730144", "recorded"), ("730144", "candidate")]
    assert segments("", spans) == []


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://i.example.net/a.jpg", True),
        ("http://i.example.net/a.jpg", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("data:text/html,<script>", False),
        ("//evil.example/x", False),
        ("", False),
        (None, False),
    ],
)
def test_safe_url(url: str | None, safe: bool) -> None:
    assert (safe_url(url) is not None) is safe


def test_model_chart_bands_and_points(rules: Rules) -> None:
    rule = rules.model("MS-20")
    points = [
        ("142000", datetime(2019, 1, 1, tzinfo=UTC), False, "/listing/1"),
        ("439057", datetime(2020, 6, 1, tzinfo=UTC), False, "/listing/2"),
        ("730144", datetime(2021, 1, 1, tzinfo=UTC), True, "/listing/3"),
    ]
    chart = model_chart(rule, points)
    assert [p.title for p in chart.panels] == ["14nnnn: 1 seen", "439nnn: 1 seen", "outside every block: 1 seen"]
    assert [p.shaded for p in chart.panels] == [True, True, False]
    (flagged,) = chart.panels[2].dots
    assert flagged.flagged and chart.flagged == 1 and chart.count == 3
    xs = [p.dots[0].x for p in chart.panels]
    assert xs == sorted(xs) and chart.left <= xs[0] and xs[-1] <= chart.width - chart.right
    empty = model_chart(rule, [])
    assert empty.count == 0 and len(empty.panels) == 2
