"""ingest_records on both backends: idempotence, revisions, classification and the review gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fixtures.storage.helpers import Ingest, RecordFactory, appearances_of, open_flags
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from db.engine import session_scope
from db.ingest import classify
from db.models import Appearance, Flag, Instrument, Listing, ListingRevision
from db.queries import history
from db.review import confirm

pytest_plugins = ["fixtures.storage.builders"]


def test_double_ingest_is_idempotent(ingest: Ingest, make_record: RecordFactory, engine: Engine) -> None:
    records = [
        make_record(title="Korg MS-10 s/n 134458"),
        make_record(title="Korg MS-20", body="serial 152817"),
        make_record(title="Yamaha CS-15, no Korg here"),
    ]
    first = ingest(*records)
    second = ingest(*records)
    assert (first.listings_new, first.instruments_new, first.flags_raised) == (3, 2, 1)
    assert (second.listings_new, second.listings_updated, second.listings_unchanged) == (0, 0, 3)
    assert (second.instruments_new, second.duplicate_sales, second.reposts, second.flags_raised) == (
        0,
        0,
        0,
        0,
    )
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Listing)) == 3
        assert session.scalar(select(func.count()).select_from(Appearance)) == 2
        assert session.scalar(select(func.count()).select_from(Flag)) == 1


def test_an_analyser_failure_keeps_the_listing_and_the_rest_of_the_batch(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    from pipeline.analyse import analyse_listing

    def analyser(title: str, body: str, rules: Any) -> Any:
        if "BOOM" in title:
            raise RuntimeError("regex blew up")
        return analyse_listing(title, body, rules)

    summary = ingest(
        make_record(title="Korg MS-10 s/n 134458"), make_record(title="BOOM MS-20 s/n 142817"), analyser=analyser
    )
    assert summary.errors == ["record 2: analysis failed (RuntimeError: regex blew up); listing stored"]
    assert (summary.listings_new, summary.instruments_new) == (2, 1)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Listing)) == 2
        assert session.scalars(select(Appearance.detected_serial)).all() == ["134458"]


def test_listing_without_vintage_instrument_is_stored(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    summary = ingest(make_record(title="Korg MS-20 mini, boxed"), make_record(title="Roland SH-101"))
    assert summary.listings_new == 2
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Listing)) == 2
        assert session.scalar(select(func.count()).select_from(Appearance)) == 0


def test_changed_text_keeps_revision_and_updates_the_appearance(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    record = make_record(title="Korg MS-10", body="s/n 134458")
    ingest(record)
    summary = ingest({**record, "body": "Lovely MS-10. s/n 134458"})
    assert (summary.listings_updated, summary.instruments_new, summary.duplicate_sales) == (1, 0, 0)
    with session_scope(engine) as session:
        revisions = session.scalars(select(ListingRevision)).all()
        assert [r.body for r in revisions] == ["s/n 134458"]
        (appearance,) = appearances_of(session, "MS-10", "134458")
        assert appearance.kind == "new"
        assert (appearance.serial_field, appearance.serial_start) == ("body", 18)


def test_changed_serial_replaces_unreviewed_appearance(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    record = make_record(title="Korg MS-20", body="serial 152817")
    ingest(record)
    ingest({**record, "body": "serial 142817 (typo fixed)"})
    with session_scope(engine) as session:
        assert appearances_of(session, "MS-20", "152817") == []
        assert [a.status for a in appearances_of(session, "MS-20", "142817")] == ["counted"]
        assert open_flags(session) == []


def test_price_change_updates_without_revision(ingest: Ingest, make_record: RecordFactory, engine: Engine) -> None:
    record = make_record(title="Korg MS-10 s/n 134458")
    ingest(record)
    summary = ingest({**record, "price": "999.00"})
    assert (summary.listings_updated, summary.listings_unchanged) == (1, 0)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(ListingRevision)) == 0
        assert str(session.scalar(select(Listing.price))) == "999.00"


def test_matrixsynth_then_reverb_is_a_duplicate_sale(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    ingest(
        make_record(
            source="matrixsynth",
            title="Korg MS-10 SN 134458",
            seller="mark",
            posted_at="2026-01-10T09:00:00+00:00",
        )
    )
    summary = ingest(
        make_record(title="Korg MS-10 vintage", body="Serial: 134458", seller="shop", posted_at="2026-06-02T09:00:00Z")
    )
    assert (summary.instruments_new, summary.duplicate_sales) == (0, 1)
    with session_scope(engine) as session:
        rows = history(session, "134458")
    assert [(r.source, r.kind, r.seller) for r in rows] == [
        ("matrixsynth", "new", "mark"),
        ("reverb", "duplicate_sale", "shop"),
    ]


def test_archive_ingested_after_newer_listing_is_still_first(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    ingest(make_record(title="Korg MS-10 SN 134458", posted_at="2026-06-02T09:00:00Z"))
    ingest(make_record(source="matrixsynth", title="Korg MS-10 SN 134458", posted_at="2026-01-10T09:00:00Z"))
    with session_scope(engine) as session:
        rows = history(session, "134458", "MS-10")
    assert [(r.source, r.kind) for r in rows] == [("matrixsynth", "new"), ("reverb", "duplicate_sale")]


@pytest.mark.parametrize(
    ("second", "kind"),
    [
        ({"seller": "Vintage-Joe", "posted_at": "2026-02-20T00:00:00Z"}, "repost"),  # same seller, 50 days
        (
            {"seller": "vintage-joe ", "posted_at": "2026-05-01T00:00:00Z"},
            "duplicate_sale",
        ),  # same seller, too late
        ({"seller": "someone", "images": ["https://img/a.jpg", "https://img/c.jpg"]}, "repost"),  # same photo
        ({"seller": "someone", "images": ["https://img/z.jpg"]}, "duplicate_sale"),
    ],
)
def test_repost_rules(ingest: Ingest, make_record: RecordFactory, engine: Engine, second: dict, kind: str) -> None:
    ingest(
        make_record(
            title="Korg Delta DL-50 s/n 283648",
            seller="vintage-joe",
            posted_at="2026-01-01T00:00:00Z",
            images=["https://img/a.jpg", "https://img/b.jpg"],
        )
    )
    ingest(make_record(**{"title": "KORG DL-50 Delta", "body": "s/n 283648", **second}))
    with session_scope(engine) as session:
        assert [a.kind for a in appearances_of(session, "Delta", "283648")] == ["new", kind]


def test_custom_repost_window(ingest: Ingest, make_record: RecordFactory, engine: Engine) -> None:
    ingest(make_record(title="Korg MS-10 s/n 134458", seller="x", posted_at="2026-01-01T00:00:00Z"))
    ingest(
        make_record(title="Korg MS-10 s/n 134458", seller="x", posted_at="2026-03-25T00:00:00Z"),
        repost_window=timedelta(days=90),
    )
    with session_scope(engine) as session:
        assert [a.kind for a in appearances_of(session, "MS-10", "134458")] == ["new", "repost"]


def test_flagged_appearance_counts_only_once_confirmed(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    summary = ingest(make_record(title="Korg MS-20", body="serial 152817"))
    assert summary.flags_raised == 1
    with session_scope(engine) as session:
        (appearance,) = appearances_of(session, "MS-20", "152817")
        assert appearance.status == "pending"
        (flag,) = open_flags(session)
        assert flag.code == "serial_outside_blocks"
        assert flag.details["suggestions"] == ["142817"]
        flag_id = flag.id
    with session_scope(engine) as session:
        confirm(session, flag_id, "alice", note="plate photo agrees")
    with session_scope(engine) as session:
        (appearance,) = appearances_of(session, "MS-20", "152817")
        assert appearance.status == "counted"
        assert appearance.reviewed_at is not None


def test_bad_records_reported_good_ones_kept(ingest: Ingest, make_record: RecordFactory) -> None:
    summary = ingest(
        make_record(title="Korg MS-10 s/n 134458"),
        make_record(title=""),
        make_record(price="lots"),
        {"title": "no url"},
        "not a record",
    )
    assert summary.listings_new == 1
    assert summary.errors == [
        "record 2: no title",
        "record 3: price is not a number: 'lots'",
        "record 4: no url",
        "record 5: a record must be a JSON object, not str",
    ]


def test_listing_record_objects_are_accepted(ingest: Ingest) -> None:
    from crawler.pages.records import ListingRecord

    record = ListingRecord(
        source="yahoo",
        url="https://page.auctions.yahoo.co.jp/x1",
        external_id="x1",
        title="KORG MS-10 シリアル 134458",
        images=("https://img/1.jpg",),
    )
    assert ingest(record).listings_new == 1


def test_one_new_per_instrument_is_enforced_by_the_schema(
    ingest: Ingest, make_record: RecordFactory, engine: Engine
) -> None:
    ingest(make_record(title="Korg MS-10 s/n 134458"), make_record(title="Korg MS-10 s/n 134458", seller="b"))
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        dup = appearances_of(session, "MS-10", "134458")[1]
        dup.kind = "new"
        session.flush()


def test_kind_check_constraint(ingest: Ingest, make_record: RecordFactory, engine: Engine) -> None:
    ingest(make_record(title="Korg MS-10 s/n 134458"))
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        appearances_of(session, "MS-10", "134458")[0].kind = "stolen"
        session.flush()


def test_same_listing_twice_in_one_batch(ingest: Ingest, make_record: RecordFactory, engine: Engine) -> None:
    record = make_record(title="Korg MS-10 s/n 134458")
    summary = ingest(record, {**record, "price": "10.00"})
    assert summary.listings_new == 1
    with session_scope(engine) as session:
        assert str(session.scalar(select(Listing.price))) == "10.00"
        assert session.scalar(select(func.count()).select_from(Instrument)) == 1


def test_classify_orders_and_register() -> None:
    from datetime import UTC, datetime

    from db.ingest import Sighting

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a = Sighting(1, 1, t0, "x", frozenset(), "u1")
    b = Sighting(1, 2, t0 + timedelta(days=10), "X", frozenset(), "u2")
    assert classify([a, b], None, timedelta(days=60)) == ["new", "repost"]
    assert classify([a, b], {"elsewhere"}, timedelta(days=60)) == ["duplicate_sale", "repost"]
    assert classify([a, b], {"u1"}, timedelta(days=60)) == ["new", "repost"]
