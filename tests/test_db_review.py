"""Review decisions: confirm, correct (validated against the blocks), dismiss, mark kind, note; all logged."""

from __future__ import annotations

from datetime import date

import pytest
from fixtures.storage.helpers import Ingest, RecordFactory, appearances_of, open_flags
from sqlalchemy import Engine, select

from db.engine import session_scope
from db.models import ReviewLog
from db.queries import history, new_serials
from db.review import ReviewError, add_note, confirm, correct, dismiss, mark_kind
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
