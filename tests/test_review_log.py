"""The review log cannot be rewritten (SQLite INSERT OR REPLACE, PostgreSQL TRUNCATE, links pointed elsewhere)
and shows it when it was: the hash chain and `korgwatch review verify-log`, on both backends."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from fixtures.storage.helpers import NOW, Ingest, RecordFactory, open_flags
from sqlalchemy import Engine, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import alembic_config, upgrade, upgrade_engine
from db.models import ReviewLog
from db.review import add_note, confirm, dismiss, reopen
from db.review_chain import GENESIS, verify_chain
from korgwatch.cli import app as cli_app
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]


@pytest.fixture
def decided(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> list[int]:
    """Three flagged listings, four decisions logged; returns the log's ids, oldest first."""
    for serial in ("152817", "730144", "162102"):
        ingest(make_record(title=f"Korg MS-20 SN {serial}"))
    with session_scope(engine) as session:
        first, second, _third = (f.id for f in open_flags(session))
        confirm(session, first, "alice")
        add_note(session, second, "bob", "asked the seller")
        dismiss(session, second, "bob")
        reopen(session, first, "alice", "confirmed by mistake")
        return list(session.scalars(select(ReviewLog.id).order_by(ReviewLog.id)))


def record(n: int, title: str) -> dict[str, object]:
    return {"source": "reverb", "url": f"https://reverb.com/item/{n}", "external_id": str(n), "title": title}


def _tamper(engine: Engine, *statements: str) -> None:
    """What someone with the database's owner rights can do: switch the triggers off, then rewrite."""
    if engine.dialect.name == "sqlite":
        path = make_url(engine.url).database
        with sqlite3.connect(str(path)) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
            for name in names:
                if name.startswith("review_log"):
                    conn.execute(f"DROP TRIGGER {name}")
            for statement in statements:
                conn.execute(statement)
        return
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE review_log DISABLE TRIGGER USER"))
        for statement in statements:
            conn.execute(text(statement))


def test_each_entry_is_chained_to_the_one_before(engine: Engine, decided: list[int]) -> None:
    with session_scope(engine) as session:
        entries = list(session.scalars(select(ReviewLog).order_by(ReviewLog.id)))
        assert [e.action for e in entries] == ["confirm", "note", "dismiss", "reopen"]
        assert entries[0].prev_hash == GENESIS
        for before, after in itertools.pairwise(entries):
            assert after.prev_hash == before.entry_hash and len(after.entry_hash or "") == 64
        report = verify_chain(session)
    assert report.intact and report.entries == 4


def test_a_changed_entry_breaks_the_chain_from_there(engine: Engine, decided: list[int]) -> None:
    _tamper(engine, f"UPDATE review_log SET reviewer = 'mallory' WHERE id = {decided[2]}")
    with session_scope(engine) as session:
        report = verify_chain(session)
    assert (report.intact, report.broken_at) == (False, decided[2])
    assert "changed" in report.reason


def test_a_removed_entry_breaks_the_chain_at_the_next(engine: Engine, decided: list[int]) -> None:
    _tamper(engine, f"DELETE FROM review_log WHERE id = {decided[1]}")
    with session_scope(engine) as session:
        report = verify_chain(session)
    assert (report.intact, report.broken_at) == (False, decided[2])
    assert "does not follow" in report.reason


def test_verify_log_command(engine: Engine, decided: list[int]) -> None:
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["review", "verify-log", "--db", url])
    assert (result.exit_code, result.output.strip()) == (0, "review log intact: 4 entries")
    _tamper(engine, f"UPDATE review_log SET note = 'rewritten' WHERE id = {decided[3]}")
    result = runner.invoke(cli_app, ["review", "verify-log", "--db", url])
    assert result.exit_code == 1
    assert f"review log broken from entry {decided[3]}: entry {decided[3]} was changed" in result.output
    assert "Traceback" not in result.output


def test_verify_log_on_a_database_without_korgwatch(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    result = CliRunner().invoke(cli_app, ["review", "verify-log", "--db", f"sqlite:///{missing}"])
    assert (result.exit_code, result.output.strip()) == (2, f"sqlite:///{missing}: no such database file")
    assert not missing.exists()  # a read command creates nothing
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE notes (id INTEGER)").connection.close()
    result = CliRunner().invoke(cli_app, ["review", "verify-log", "--db", f"sqlite:///{other}"])
    assert result.exit_code == 2
    assert "no korgwatch review log" in result.output


def test_links_may_be_cleared_but_not_moved(engine: Engine, decided: list[int]) -> None:
    with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as session:
        session.execute(update(ReviewLog).where(ReviewLog.id == decided[0]).values(flag_id=decided[0] + 1))
    with session_scope(engine) as session:  # what ON DELETE SET NULL does stays possible
        session.execute(update(ReviewLog).where(ReviewLog.id == decided[0]).values(flag_id=None))
    with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as session:
        session.execute(update(ReviewLog).where(ReviewLog.id == decided[1]).values(entry_hash="0" * 64))


def _decisions(engine: Engine, rules: Rules) -> list[int]:
    with session_scope(engine) as session:
        ingest_records(session, [record(1, "Korg MS-20 SN 152817")], rules, now=NOW)
    with session_scope(engine) as session:
        (flag,) = open_flags(session)
        confirm(session, flag.id, "alice")
        return list(session.scalars(select(ReviewLog.id)))


def test_sqlite_insert_or_replace_is_refused(sqlite_engine: Engine, rules: Rules) -> None:
    """REPLACE deletes the old row without firing the delete trigger: an insert naming an existing entry, or
    a second successor of one, is refused before it gets that far (by any client, not only korgwatch)."""
    (entry_id,) = _decisions(sqlite_engine, rules)
    path = str(make_url(sqlite_engine.url).database)
    forged = (
        "INSERT OR REPLACE INTO review_log (id, action, reviewer, at, prev_hash, entry_hash) "
        "VALUES (?, 'confirm', 'mallory', '2026-07-01 12:00:00.000000', ?, ?)"
    )
    with sqlite3.connect(path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(forged, (entry_id, "f" * 64, "e" * 64))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(forged, (entry_id + 1, GENESIS, "e" * 64))  # would replace by the unique prev_hash
    with session_scope(sqlite_engine) as session:
        (entry,) = session.scalars(select(ReviewLog)).all()
        assert entry.reviewer == "alice" and verify_chain(session).intact


@pytest.mark.parametrize("statement", ["TRUNCATE review_log", "TRUNCATE flags CASCADE", "TRUNCATE listings CASCADE"])
def test_postgres_truncate_is_refused(postgres_url: str, rules: Rules, statement: str) -> None:
    engine = make_engine(postgres_url)
    try:
        upgrade_engine(engine)
        _decisions(engine, rules)
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
        with session_scope(engine) as session:
            assert len(session.scalars(select(ReviewLog)).all()) == 1
            assert verify_chain(session).intact
    finally:
        engine.dispose()


def test_migration_chains_the_entries_already_there(db_url: str) -> None:
    """Entries written before the chain existed are chained, oldest first, by the migration."""
    script = ScriptDirectory.from_config(alembic_config())
    before = script.get_revision("0006_review").down_revision
    assert isinstance(before, str)
    upgrade(db_url, before)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for n in range(3):
                conn.execute(
                    text("INSERT INTO review_log (action, reviewer, at, note) VALUES ('note', :who, :at, :note)"),
                    {"who": f"r{n}", "at": datetime(2026, 1, 1 + n, tzinfo=UTC), "note": f"note {n}"},
                )
        upgrade(db_url)
        with session_scope(engine) as session:
            hashes = [e.prev_hash for e in session.scalars(select(ReviewLog).order_by(ReviewLog.id))]
            assert hashes[0] == GENESIS and len(set(hashes)) == 3
            assert verify_chain(session).entries == 3 and verify_chain(session).intact
    finally:
        engine.dispose()


def test_concurrent_decisions_keep_one_chain(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> None:
    """Reviewers deciding at the same moment take turns at the end of the log: no fork, no lost decision."""
    import threading

    for n in range(6):
        ingest(make_record(title=f"Korg MS-20 SN 73014{n}"))
    with session_scope(engine) as session:
        flag_ids = [f.id for f in open_flags(session)]
    barrier = threading.Barrier(len(flag_ids))
    failures: list[BaseException] = []

    def decide(flag_id: int) -> None:
        try:
            barrier.wait()
            with session_scope(engine) as session:
                confirm(session, flag_id, f"reviewer-{flag_id}")
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=decide, args=(f,)) for f in flag_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with session_scope(engine) as session:
        report = verify_chain(session)
    assert report.intact and report.entries == len(flag_ids)
