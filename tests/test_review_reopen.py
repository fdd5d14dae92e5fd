"""Taking a decision back: `review.reopen` (the page's undo and reopen, `korgwatch review reopen`) restores the
flag and its appearance as they were before the decision, and logs a new entry beside the old one."""

from __future__ import annotations

import pytest
from fixtures.storage.helpers import Ingest, RecordFactory, appearances_of, open_flags
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db.engine import session_scope
from db.models import Flag, ReviewLog
from db.review import ReviewError, confirm, correct, dismiss, reopen
from db.review_chain import verify_chain
from korgwatch.cli import app as cli_app
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]


@pytest.fixture
def flagged(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> int:
    """One listing whose serial fits no MS-20 block: one open flag; returns its id."""
    ingest(make_record(title="Korg MS-20", body="serial 152817", posted_at="2026-02-01T00:00:00Z"))
    with session_scope(engine) as session:
        (flag,) = open_flags(session)
        return flag.id


def _log(session: Session) -> list[tuple[str, str]]:
    return [(e.action, e.reviewer) for e in session.scalars(select(ReviewLog).order_by(ReviewLog.id))]


def test_reopen_a_correction_moves_the_appearance_back(engine: Engine, rules: Rules, flagged: int) -> None:
    with session_scope(engine) as session:
        correct(session, flagged, "alice", rules, serial="142817", reason="plate photo shows 142817")
    with session_scope(engine) as session:
        reopen(session, flagged, "bob", "the plate photo is of another unit")
    with session_scope(engine) as session:
        assert appearances_of(session, "MS-20", "142817") == []
        (appearance,) = appearances_of(session, "MS-20", "152817")
        assert (appearance.status, appearance.kind) == ("pending", "new")
        flag = session.get(Flag, flagged)
        assert flag is not None and (flag.status, flag.reviewer, flag.decided_at) == ("open", None, None)
        assert _log(session) == [("correct", "alice"), ("reopen", "bob")]
        decision, reopening = session.scalars(select(ReviewLog).order_by(ReviewLog.id)).all()
        assert reopening.new_value["takes_back"] == decision.id
        assert reopening.old_value["appearance"]["serial"] == "142817"
        assert reopening.new_value["appearance"]["serial"] == "152817"
        assert verify_chain(session).intact
    with session_scope(engine) as session:  # and it can be decided again
        confirm(session, flagged, "bob")


def test_undo_a_dismissal_restores_the_first_sighting(
    engine: Engine, ingest: Ingest, make_record: RecordFactory, flagged: int
) -> None:
    ingest(make_record(title="Korg MS-20", body="serial 152817", posted_at="2026-05-01T00:00:00Z"))
    with session_scope(engine) as session:
        dismiss(session, flagged, "alice")
    with session_scope(engine) as session:
        reopen(session, flagged, "alice", undo=True)
    with session_scope(engine) as session:
        apps = appearances_of(session, "MS-20", "152817")
        assert [(a.status, a.kind) for a in apps] == [("pending", "new"), ("pending", "duplicate_sale")]
        assert _log(session) == [("dismiss", "alice"), ("undo", "alice")]


def test_reopen_a_confirmation(engine: Engine, flagged: int) -> None:
    with session_scope(engine) as session:
        confirm(session, flagged, "alice")
        assert [a.status for a in appearances_of(session, "MS-20", "152817")] == ["counted"]
    with session_scope(engine) as session:
        reopen(session, flagged, "alice")
    with session_scope(engine) as session:
        assert [a.status for a in appearances_of(session, "MS-20", "152817")] == ["pending"]
        assert [f.id for f in open_flags(session)] == [flagged]


def test_an_open_flag_cannot_be_reopened(engine: Engine, flagged: int) -> None:
    with pytest.raises(ReviewError, match="is open"), session_scope(engine) as session:
        reopen(session, flagged, "alice")
    with pytest.raises(ReviewError, match="no flag"), session_scope(engine) as session:
        reopen(session, flagged + 100, "alice")


def test_reopen_command(engine: Engine, flagged: int) -> None:
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["review", "reopen", str(flagged), "-r", "alice", "--db", url])
    assert result.exit_code == 1 and f"flag {flagged} is open" in result.output
    with session_scope(engine) as session:
        dismiss(session, flagged, "alice")
    result = runner.invoke(cli_app, ["review", "reopen", str(flagged), "-r", "bob", "--note", "oops", "--db", url])
    assert (result.exit_code, result.output.strip()) == (0, f"flag {flagged} reopened")
    with session_scope(engine) as session:
        assert _log(session) == [("dismiss", "alice"), ("reopen", "bob")]
        assert [f.id for f in open_flags(session)] == [flagged]
