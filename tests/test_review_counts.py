"""The counts the review pages read (migration 0008_counts) stay equal to counting the rows themselves, on
SQLite and PostgreSQL: through ingest, re-ingest of edited listings, every kind of decision, reopening, and
deleting listings (cascading to their appearances and flags)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fixtures.storage.helpers import Ingest, RecordFactory, open_flags
from sqlalchemy import Engine, case, delete, func, select
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.migrate import upgrade_engine
from db.models import Appearance, Flag, FlagCount, Instrument, Listing, ModelSerial
from db.review import change_model, confirm, correct, dismiss, mark_different_unit, reopen
from pipeline.rules import Rules
from review.queries import code_counts

pytest_plugins = ["fixtures.storage.builders"]


def counted_flags(session: Session) -> dict[tuple[str, str], int]:
    """Flags per (status, code), counted from every flag row: what `flag_counts` must say."""
    rows = session.execute(select(Flag.status, Flag.code, func.count()).group_by(Flag.status, Flag.code))
    return {(status, code): n for status, code, n in rows}


def kept_flags(session: Session) -> dict[tuple[str, str], int]:
    """What `flag_counts` says, summed over the slots, zeros left out."""
    rows = session.execute(
        select(FlagCount.status, FlagCount.code, func.sum(FlagCount.n)).group_by(FlagCount.status, FlagCount.code)
    )
    return {(status, code): int(n) for status, code, n in rows if n}


def counted_serials(session: Session) -> dict[int, tuple[Any, ...]]:
    """Each instrument with a sighting not dismissed, aggregated from the appearances: what `model_serials` holds."""
    rows = session.execute(
        select(
            Appearance.instrument_id,
            Instrument.model,
            Instrument.serial,
            func.min(Appearance.seen_at),
            func.min(Appearance.listing_id),
            func.sum(case((Appearance.status == "pending", 1), else_=0)),
            func.sum(case((Appearance.status == "counted", 1), else_=0)),
        )
        .join(Instrument, Instrument.id == Appearance.instrument_id)
        .where(Appearance.status != "dismissed")
        .group_by(Appearance.instrument_id, Instrument.model, Instrument.serial)
    )
    return {row[0]: (row[1], row[2], _utc(row[3]), row[4], int(row[5]), int(row[6])) for row in rows}


def kept_serials(session: Session) -> dict[int, tuple[Any, ...]]:
    return {
        m.instrument_id: (m.model, m.serial, _utc(m.first_seen), m.listing_id, m.pending, m.counted)
        for m in session.scalars(select(ModelSerial))
    }


def _utc(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def assert_counts_true(engine: Engine) -> None:
    with session_scope(engine) as session:
        flags, serials = counted_flags(session), counted_serials(session)
        assert flags, "the test must have flags to count"
        assert kept_flags(session) == flags
        assert kept_serials(session) == serials
        assert code_counts(session, "open") == sorted(
            ((code, n) for (status, code), n in flags.items() if status == "open"), key=lambda r: (-r[1], r[0])
        )


@pytest.fixture
def store(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> Engine:
    """Listings with flags of several codes, serials seen more than once, and listings with no serial."""
    ingest(
        make_record(title="Korg MS-20", body="serial 152817", posted_at="2026-02-01T00:00:00Z"),
        make_record(title="Korg MS-20 s/n 152817 again", posted_at="2026-04-01T00:00:00Z", seller="x"),
        make_record(title="Korg MS-20 s/n 142001", posted_at="2026-01-01T00:00:00Z"),
        make_record(title="Korg MS-20 s/n 142001", posted_at="2026-05-01T00:00:00Z"),
        make_record(title="Korg MS-20 s/n 730144", posted_at="2026-03-01T00:00:00Z"),
        make_record(title="Korg MS-20 s/n 14201", posted_at="2026-03-02T00:00:00Z"),
        make_record(title="Korg Polysix s/n 383001", posted_at="2026-03-03T00:00:00Z"),
        make_record(title="Korg MS-20 s/n 152999", posted_at="2026-03-04T00:00:00Z"),
        make_record(title="Korg MS-20 analog synthesizer"),
    )
    return engine


def test_counts_follow_ingest_and_reingest(store: Engine, ingest: Ingest, make_record: RecordFactory) -> None:
    assert_counts_true(store)
    # An edited listing (same external id): its flags and appearances are re-made.
    ingest(make_record(external_id="5", url="https://reverb.com/item/5", title="Korg MS-20 s/n 143144"))
    assert_counts_true(store)
    ingest(make_record(external_id="6", url="https://reverb.com/item/6", title="Korg MS-20 without a number"))
    assert_counts_true(store)


def test_counts_follow_every_decision_and_reopen(store: Engine, rules: Rules) -> None:
    with session_scope(store) as session:
        by_serial = {f.appearance.instrument.serial: f.id for f in open_flags(session) if f.appearance}
    decisions = [
        (by_serial["152817"], lambda s, i: correct(s, i, "alice", rules, serial="142817", reason="plate photo")),
        (by_serial["152999"], lambda s, i: dismiss(s, i, "alice")),
        (by_serial["14201"], lambda s, i: confirm(s, i, "alice")),
        (by_serial["730144"], lambda s, i: change_model(s, i, "Poly-61", "alice", rules, reason="the photo")),
    ]
    for flag_id, decide in decisions:
        with session_scope(store) as session:
            decide(session, flag_id)
        assert_counts_true(store)
    for flag_id, _ in decisions:
        with session_scope(store) as session:
            reopen(session, flag_id, "bob", "taken back")
        assert_counts_true(store)


def test_counts_follow_a_second_unit(store: Engine) -> None:
    with session_scope(store) as session:
        later = session.scalars(
            select(Appearance.id)
            .join(Instrument, Instrument.id == Appearance.instrument_id)
            .where(Instrument.serial == "142001")
            .order_by(Appearance.seen_at)
        ).all()
    with session_scope(store) as session:
        mark_different_unit(session, later[-1], "alice", "visibly different")
    assert_counts_true(store)


def test_counts_follow_deleted_listings(store: Engine) -> None:
    with session_scope(store) as session:
        doomed = session.scalars(select(Listing.id).order_by(Listing.id).limit(3)).all()
        session.execute(delete(Listing).where(Listing.id.in_(doomed)))  # cascades to appearances and flags
    assert_counts_true(store)


def test_migration_counts_an_existing_store(store: Engine) -> None:
    """A store filled before 0008 gets its counts from its rows when upgraded (a user's store does)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config

    config = alembic_config()
    before = ScriptDirectory.from_config(config).get_revision("0008_counts").down_revision
    assert isinstance(before, str)
    with store.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, before)
    with session_scope(store) as session:  # a decision while no trigger watches
        confirm(session, open_flags(session)[0].id, "alice")
    upgrade_engine(store)
    assert_counts_true(store)
