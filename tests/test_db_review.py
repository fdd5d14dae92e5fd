"""Review decisions: confirm, correct (validated against the blocks), dismiss, mark kind, different unit, note;
all logged."""

from __future__ import annotations

from datetime import date

import pytest
from fixtures.storage.helpers import Ingest, RecordFactory, appearances_of, open_flags
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Appearance, Instrument, ReviewLog
from db.queries import history, new_serials
from db.review import ReviewError, add_note, confirm, correct, dismiss, mark_different_unit, mark_kind
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]


@pytest.fixture
def flagged(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> int:
    """One listing whose serial fits no MS-20 block: one open flag; returns its id."""
    ingest(make_record(title="Korg MS-20", body="serial 152817", posted_at="2026-02-01T00:00:00Z"))
    with session_scope(engine) as session:
        (flag,) = open_flags(session)
        return flag.id


def test_correct_serial_moves_the_appearance(engine: Engine, rules: Rules, flagged: int) -> None:
    with session_scope(engine) as session:
        correct(session, flagged, "alice", rules, serial="142817", reason="plate photo shows 142817")
    with session_scope(engine) as session:
        assert appearances_of(session, "MS-20", "152817") == []
        (appearance,) = appearances_of(session, "MS-20", "142817")
        assert (appearance.status, appearance.kind, appearance.detected_serial) == (
            "counted",
            "new",
            "152817",
        )
        (log,) = session.scalars(select(ReviewLog)).all()
        assert log.action == "correct" and log.reviewer == "alice" and log.note == "plate photo shows 142817"
        assert log.old_value["appearance"]["serial"] == "152817"
        assert log.new_value["appearance"]["serial"] == "142817"
        assert [r.serial for r in new_serials(session, date(2026, 1, 1))] == ["142817"]


def test_correction_must_fit_a_block(engine: Engine, rules: Rules, flagged: int) -> None:
    with pytest.raises(ReviewError, match="fits no block of MS-20"), session_scope(engine) as session:
        correct(session, flagged, "alice", rules, serial="999999", reason="guess")
    with pytest.raises(ReviewError, match="needs a reason"), session_scope(engine) as session:
        correct(session, flagged, "alice", rules, serial="142817", reason=" ")
    with session_scope(engine) as session:
        assert [f.id for f in open_flags(session)] == [flagged]


def test_correct_model(engine: Engine, rules: Rules, flagged: int) -> None:
    with session_scope(engine) as session:
        correct(session, flagged, "bob", rules, model="SQ-10", reason="it is the SQ-10 (see photo)")
    with session_scope(engine) as session:
        assert [a.status for a in appearances_of(session, "SQ-10", "152817")] == ["counted"]


def test_dismiss_takes_it_out_and_promotes_the_next(
    engine: Engine, ingest: Ingest, make_record: RecordFactory, flagged: int
) -> None:
    ingest(make_record(title="Korg MS-20", body="serial 152817", posted_at="2026-05-01T00:00:00Z"))
    with session_scope(engine) as session:
        assert [a.kind for a in appearances_of(session, "MS-20", "152817")] == ["new", "duplicate_sale"]
        dismiss(session, flagged, "alice", note="photo of a Roland plate")
    with session_scope(engine) as session:
        apps = appearances_of(session, "MS-20", "152817")
        assert [(a.status, a.kind) for a in apps] == [("dismissed", "duplicate_sale"), ("pending", "new")]
    with pytest.raises(ReviewError, match="already dismissed"), session_scope(engine) as session:
        confirm(session, flagged, "bob")


def test_mark_kind_is_kept(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> None:
    ingest(make_record(title="Korg MS-10 s/n 134458", posted_at="2026-01-01T00:00:00Z"))
    ingest(make_record(title="Korg MS-10 s/n 134458", posted_at="2026-06-01T00:00:00Z"))
    with session_scope(engine) as session:
        second = appearances_of(session, "MS-10", "134458")[1]
        mark_kind(session, second.id, "repost", "alice", note="different photographs but seemingly the same seller")
    ingest(make_record(title="Korg MS-10 s/n 134458", posted_at="2026-03-01T00:00:00Z"))
    with session_scope(engine) as session:
        rows = history(session, "134458")
        assert [r.kind for r in rows] == ["new", "duplicate_sale", "repost"]
        with pytest.raises(ReviewError, match="already the first sighting"):
            mark_kind(session, appearances_of(session, "MS-10", "134458")[2].id, "new", "alice")


def test_note_does_not_decide(engine: Engine, flagged: int) -> None:
    with session_scope(engine) as session:
        add_note(session, flagged, "alice", "s/n only visible on box")
        add_note(session, flagged, "bob", "asked the seller")
    with session_scope(engine) as session:
        (flag,) = open_flags(session)
        assert flag.note == "s/n only visible on box\nasked the seller"
        assert len(session.scalars(select(ReviewLog)).all()) == 2


def test_review_log_is_append_only(engine: Engine, flagged: int) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    with session_scope(engine) as session:
        confirm(session, flagged, "alice")
    with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as session:
        session.execute(update(ReviewLog).values(reviewer="mallory"))
    with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as session:
        session.execute(delete(ReviewLog))
    with session_scope(engine) as session:
        assert [r.reviewer for r in session.scalars(select(ReviewLog))] == ["alice"]


def test_superseded_appearance_keeps_its_log(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> None:
    record = make_record(title="Korg MS-20", body="serial 152817")
    ingest(record)
    with session_scope(engine) as session:
        (flag,) = open_flags(session)
        add_note(session, flag.id, "alice", "asked the seller")
    ingest({**record, "body": "serial 142817 (typo fixed)"})
    with session_scope(engine) as session:
        (log,) = session.scalars(select(ReviewLog)).all()
        assert (log.action, log.flag_id, log.appearance_id) == ("note", None, None)
        assert open_flags(session) == []


# --- a different unit with the same serial -----------------------------------------------------------


def _ms10(make_record: RecordFactory, when: str, seller: str, images: list[str] | None = None) -> dict[str, object]:
    return make_record(title="Korg MS-10 s/n 134458", posted_at=when, seller=seller, images=images or [])


def _units(session: Session) -> list[tuple[int, str, str]]:
    """(unit, kind, seller) of every sighting of MS-10 134458, oldest first."""
    return [(r.unit, r.kind, r.seller or "") for r in history(session, "134458", "MS-10")]


@pytest.fixture
def two_sellers(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> list[int]:
    """The register's "A second MS-10 with this serial number": one seller in January, another from June."""
    ingest(_ms10(make_record, "2026-01-01T00:00:00Z", "alpha", ["https://img/a1.jpg"]))
    ingest(_ms10(make_record, "2026-06-01T00:00:00Z", "beta", ["https://img/b1.jpg"]))
    ingest(_ms10(make_record, "2026-09-01T00:00:00Z", "gamma", ["https://img/b1.jpg"]))
    with session_scope(engine) as session:
        apps = appearances_of(session, "MS-10", "134458")
        assert [a.kind for a in apps] == ["new", "duplicate_sale", "repost"]
        return [a.id for a in apps]


def test_different_unit_gets_its_own_first_sighting(engine: Engine, two_sellers: list[int]) -> None:
    _, second, third = two_sellers
    with session_scope(engine) as session:
        unit = mark_different_unit(session, second, "alice", "Visibly different from the first.", later=[third])
        assert (unit.model, unit.serial, unit.unit) == ("MS-10", "134458", 2)
    with session_scope(engine) as session:
        assert _units(session) == [(1, "new", "alpha"), (2, "new", "beta"), (2, "repost", "gamma")]
        moved = session.get(Appearance, second)
        assert moved is not None and moved.kind_locked and moved.status == "counted"
        (log,) = session.scalars(select(ReviewLog)).all()
        assert (log.action, log.reviewer, log.appearance_id) == ("different_unit", "alice", second)
        assert log.note == "Visibly different from the first."
        assert log.old_value == {
            "appearance": {
                "model": "MS-10",
                "serial": "134458",
                "unit": 1,
                "kind": "duplicate_sale",
                "status": "counted",
            },
            "moved": [second, third],
        }
        assert log.new_value is not None
        assert (log.new_value["appearance"]["unit"], log.new_value["appearance"]["kind"]) == (2, "new")
        units = session.execute(
            select(Instrument.unit).where(Instrument.serial == "134458").order_by(Instrument.unit)
        ).scalars()
        assert list(units) == [1, 2]


def test_different_unit_moves_only_the_one_named(engine: Engine, two_sellers: list[int]) -> None:
    _, second, third = two_sellers
    with session_scope(engine) as session:
        mark_different_unit(session, second, "alice")
    with session_scope(engine) as session:
        # The third listing stays with unit 1, whose timeline is reclassified without the second.
        assert _units(session) == [(1, "new", "alpha"), (2, "new", "beta"), (1, "duplicate_sale", "gamma")]
        # A third unit of the same serial is unit 3.
        assert mark_different_unit(session, third, "bob").unit == 3


def test_the_first_sighting_may_be_the_other_unit(engine: Engine, two_sellers: list[int]) -> None:
    first, _, _ = two_sellers
    with session_scope(engine) as session:
        mark_different_unit(session, first, "alice")
    with session_scope(engine) as session:
        assert _units(session) == [(2, "new", "alpha"), (1, "new", "beta"), (1, "repost", "gamma")]


def test_different_unit_refusals(
    engine: Engine, ingest: Ingest, make_record: RecordFactory, two_sellers: list[int]
) -> None:
    first, second, third = two_sellers
    cases = [
        (dict(appearance_id=999999), "no appearance 999999"),
        (dict(appearance_id=second, later=[first]), "older than"),
        (dict(appearance_id=first, later=[second, third]), "no other sighting"),
        (dict(appearance_id=second, later=[999999]), "no appearance 999999"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ReviewError, match=message), session_scope(engine) as session:
            mark_different_unit(session, reviewer="alice", **kwargs)  # type: ignore[arg-type]
    ingest(make_record(title="Korg MS-20 s/n 141234", posted_at="2026-01-01T00:00:00Z"))
    with session_scope(engine) as session:
        (other,) = appearances_of(session, "MS-20", "141234")
        with pytest.raises(ReviewError, match="not a sighting of MS-10 134458 unit 1"):
            mark_different_unit(session, second, "alice", later=[other.id])
    with session_scope(engine) as session:
        assert _units(session) == [(1, "new", "alpha"), (1, "duplicate_sale", "beta"), (1, "repost", "gamma")]
        assert session.scalars(select(ReviewLog)).all() == []


def test_later_ingests_pick_a_unit_by_photo_then_seller(
    engine: Engine, ingest: Ingest, make_record: RecordFactory, two_sellers: list[int]
) -> None:
    _, second, third = two_sellers
    with session_scope(engine) as session:
        mark_different_unit(session, second, "alice", later=[third])
    # Unit 2's seller again: unit 2. Unit 2's photo with a new seller: unit 2. A stranger: unit 1.
    ingest(_ms10(make_record, "2026-10-01T00:00:00Z", "Beta "))
    ingest(_ms10(make_record, "2026-11-01T00:00:00Z", "delta", ["https://img/b1.jpg"]))
    ingest(_ms10(make_record, "2026-11-02T00:00:00Z", "epsilon"))
    # A photo of unit 1 wins over unit 2's seller; unit 1's seller stays with unit 1.
    ingest(_ms10(make_record, "2026-11-03T00:00:00Z", "gamma", ["https://img/a1.jpg"]))
    ingest(_ms10(make_record, "2026-11-04T00:00:00Z", "alpha"))
    ingest(_ms10(make_record, "2026-11-05T00:00:00Z", "alpha"))
    # gamma has now sold under both units: ambiguous, so unit 1.
    ingest(_ms10(make_record, "2026-11-06T00:00:00Z", "gamma"))
    with session_scope(engine) as session:
        # Kinds follow each unit's own timeline (the classifier compares with the unit's previous sighting).
        assert _units(session) == [
            (1, "new", "alpha"),
            (2, "new", "beta"),
            (2, "repost", "gamma"),
            (2, "duplicate_sale", "Beta "),
            (2, "duplicate_sale", "delta"),
            (1, "duplicate_sale", "epsilon"),
            (1, "duplicate_sale", "gamma"),
            (1, "duplicate_sale", "alpha"),
            (1, "repost", "alpha"),
            (1, "duplicate_sale", "gamma"),
        ]


def test_one_new_per_unit_still_enforced(engine: Engine, two_sellers: list[int]) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    _, second, third = two_sellers
    with session_scope(engine) as session:
        mark_different_unit(session, second, "alice", later=[third])
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.execute(update(Appearance).where(Appearance.id == third).values(kind="new"))
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(Instrument(model="MS-10", serial="134458", unit=2))
        session.flush()
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(Instrument(model="MS-10", serial="134458", unit=0))
        session.flush()
