"""Classification reads a bounded amount per serial, and gives what classifying the whole history gives.

`plan_kinds` reads only each instrument's latest stored sighting when the new ones come after it (the common
case), and the whole history otherwise (old listings ingested late, re-analysed listings). Whatever the order
of arrival, the kinds stored must be those `reclassify_instruments` (the whole history, from the first sighting)
computes: after any sequence of ingests it finds nothing to change.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from fixtures.storage.helpers import NOW
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from db.engine import session_scope
from db.ingest import (
    DEFAULT_REPOST_WINDOW,
    ingest_records,
    latest_sightings,
    latest_sightings_statement,
    reclassify_instruments,
)
from db.models import Appearance, Instrument, RegisterEntry
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]

START = datetime(2025, 1, 1, tzinfo=UTC)

# One sighting: (which of two serials, day posted or None for "when first seen", seller, photo or None)
sighting = st.tuples(
    st.integers(0, 1),
    st.one_of(st.none(), st.integers(0, 120)),
    st.sampled_from(["ann", "bob", "cy"]),
    st.one_of(st.none(), st.sampled_from(["p1", "p2"])),
)
scenario = st.tuples(
    st.lists(sighting, min_size=1, max_size=12),
    st.randoms(use_true_random=False),
    st.integers(1, 4),  # batches
    st.booleans(),  # the register knows serial 0
    st.integers(0, 3),  # listings edited afterwards (text, seller and photos changed: re-analysed)
)


def record(key: str, serial: str, day: int | None, seller: str, photo: str | None, body: str = "") -> dict[str, Any]:
    return {
        "source": "reverb",
        "url": f"https://reverb.com/item/{key}",
        "external_id": key,
        "title": f"Korg MS-20 s/n {serial}",
        "body": body,
        "seller": seller,
        "posted_at": None if day is None else (START + timedelta(days=day)).isoformat(),
        "images": [f"https://img.example.com/{serial}/{photo}.jpg"] if photo else [],
    }


def test_bounded_classification_equals_full_reclassification(engine: Engine, rules: Rules) -> None:
    """Random sightings of two serials, ingested in random order and batches, some edited later: the kinds
    stored are those a full reclassification computes (it changes nothing)."""
    examples = itertools.count()

    @settings(max_examples=60, deadline=None)
    @given(scenario)
    def check(case: tuple[list[tuple[int, int | None, str, str | None]], Any, int, bool, int]) -> None:
        sightings, rng, batches, registered, edits = case
        n = next(examples)
        serials = [f"{140000 + 2 * n + k}" for k in (0, 1)]  # fresh serials per example: one store for all
        records = [
            record(f"{n}-{i}", serials[which], day, seller, photo)
            for i, (which, day, seller, photo) in enumerate(sightings)
        ]
        if registered:
            with session_scope(engine) as session:
                url = records[0]["url"] if rng.random() < 0.5 else ""
                session.add(RegisterEntry(model="MS-20", serial=serials[0], url=url))
        rng.shuffle(records)
        cuts = sorted(rng.sample(range(1, len(records)), min(batches - 1, len(records) - 1)))
        for number, (low, high) in enumerate(itertools.pairwise([0, *cuts, len(records)])):
            with session_scope(engine) as session:
                ingest_records(session, records[low:high], rules, now=NOW + timedelta(hours=number))
        for edited in rng.sample(records, min(edits, len(records))):
            changed = {**edited, "body": "edited", "seller": rng.choice(["ann", "dee"]), "images": []}
            with session_scope(engine) as session:
                ingest_records(session, [changed], rules, now=NOW + timedelta(days=1))

        with session_scope(engine) as session:
            ids = session.scalars(select(Instrument.id).where(Instrument.serial.in_(serials))).all()
            stored = session.scalar(
                select(text("count(*)")).select_from(Appearance).where(Appearance.instrument_id.in_(ids))
            )
            assert stored == len(sightings)
            assert reclassify_instruments(session, ids, DEFAULT_REPOST_WINDOW) == 0
            session.rollback()

    check()


def test_latest_sighting_is_the_last_by_time_then_id_ignoring_dismissed(engine: Engine, rules: Rules) -> None:
    """What the bounded path reads: per instrument the sighting classify would compare a later one with."""
    records = [
        record("a", "140001", 10, "ann", None),
        record("b", "140001", 30, "bob", None),  # latest by time...
        record("c", "140001", 20, "cy", None),  # ...though ingested last
        record("d", "140003", 5, "ann", None),
        record("e", "140003", 5, "bob", None),  # same instant: the higher id is later
    ]
    with session_scope(engine) as session:
        ingest_records(session, records[:2], rules, now=NOW)
    with session_scope(engine) as session:
        ingest_records(session, records[2:], rules, now=NOW)
    with session_scope(engine) as session:
        ids: dict[str, int] = {serial: iid for serial, iid in session.execute(select(Instrument.serial, Instrument.id))}
        latest = latest_sightings(session, [ids["140001"], ids["140003"], ids["140001"] + 1000])
        assert {iid: s.seller for iid, s in latest.items()} == {ids["140001"]: "bob", ids["140003"]: "bob"}
        assert latest[ids["140001"]].seen_at == START + timedelta(days=30)
        # A dismissed sighting is no sighting: the one before it is the latest.
        session.execute(
            Appearance.__table__.update()
            .where(Appearance.id == latest[ids["140001"]].id)
            .values(status="dismissed", reviewed_at=NOW)
        )
        again = latest_sightings(session, [ids["140001"]])
        assert again[ids["140001"]].seller == "cy"


def test_the_latest_sighting_is_read_through_the_instrument_time_index(sqlite_engine: Engine) -> None:
    """On SQLite the look-up steps through ix_appearances_instrument_id_seen_at, never a scan of appearances."""
    with session_scope(sqlite_engine) as session:
        stmt = latest_sightings_statement(session, [1, 2])
        compiled = stmt.compile(sqlite_engine, compile_kwargs={"literal_binds": True})
        plan = " | ".join(row[-1] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_appearances_instrument_id_seen_at" in plan, plan
    assert "SCAN appearances" not in plan, plan
