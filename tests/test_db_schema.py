"""Migrations and schema: an empty database upgrades itself on both backends, and look-ups use indexes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, inspect, select, text

from db.engine import make_engine, session_scope
from db.migrate import current_revision, head_revision, upgrade
from db.models import Appearance, Base, Instrument, Listing, Source
from db.queries import history_statement


def test_upgrade_empty_database(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)  # a second run is a no-op
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_processes_starting_together_upgrade_a_fresh_database_once(db_url: str) -> None:
    """Workers started at once each upgrade the empty store first: they must not race to create it."""
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def upgrade_when_all_ready() -> None:
        start.wait()
        try:
            upgrade(db_url)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade_when_all_ready) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_models_match_migrations(sqlite_url: str) -> None:
    """Nothing in db/models.py is missing from the migrations (what `alembic check` tests)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        engine.dispose()


def _fill(engine: Engine, n: int) -> None:
    """Many instruments with one appearance each, written with Core bulk inserts."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(engine) as session:
        session.execute(insert(Source), [{"name": "reverb"}])
        session.execute(
            insert(Listing),
            [
                {
                    "source_id": 1,
                    "external_id": str(i),
                    "url": f"https://r/{i}",
                    "title": "t",
                    "body": "",
                    "first_seen": now,
                    "last_seen": now,
                    "images": [],
                    "extra": {},
                    "content_hash": "x",
                    "record_hash": "x",
                }
                for i in range(1, n + 1)
            ],
        )
        session.execute(insert(Instrument), [{"model": "MS-20", "serial": str(140000 + i)} for i in range(1, n + 1)])
        session.execute(
            insert(Appearance),
            [
                {
                    "listing_id": i,
                    "instrument_id": i,
                    "detected_model": "MS-20",
                    "detected_serial": str(140000 + i),
                    "kind": "new",
                    "status": "counted",
                    "seen_at": now + timedelta(minutes=i),
                    "created_at": now,
                    "kind_locked": False,
                    "fits": [],
                }
                for i in range(1, n + 1)
            ],
        )


def test_serial_lookup_uses_indexes(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        _fill(engine, 3000)
        stmt = history_statement("141234")
        with engine.connect() as connection:
            sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            if engine.dialect.name == "sqlite":
                plan = " | ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
                assert "USING INDEX ix_instruments_serial" in plan, plan
                assert "ix_appearances_instrument_id_seen_at" in plan, plan
                assert "SCAN instruments" not in plan and "SCAN appearances" not in plan, plan
            else:
                connection.exec_driver_sql("ANALYZE")
                plan = " | ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
                assert "ix_instruments_serial" in plan, plan
                assert "ix_appearances_instrument_id_seen_at" in plan, plan
            rows = connection.execute(stmt).all()
        assert [r.serial for r in rows] == ["141234"]
    finally:
        engine.dispose()


def test_foreign_keys_enforced(db_url: str) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with pytest.raises(IntegrityError), session_scope(engine) as session:
            session.execute(insert(Instrument), [{"model": "MS-20", "serial": "140001"}])
            session.execute(
                text(
                    "INSERT INTO appearances (listing_id, instrument_id, detected_model, detected_serial,"
                    " kind, kind_locked, status, fits, seen_at, created_at)"
                    " VALUES (999, 1, 'MS-20', '140001', 'new', false, 'counted', '[]', :t, :t)"
                ),
                {"t": datetime(2026, 1, 1)},
            )
        with session_scope(engine) as session:
            assert session.scalars(select(Instrument)).all() == []
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    from alembic import command

    from db.migrate import alembic_config

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert "listings" not in inspect(engine).get_table_names()
        upgrade(db_url)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_instrument_units_migrate_up_and_down(db_url: str) -> None:
    """0004 keeps every instrument and appearance; going down folds unit 2 back into unit 1."""
    from alembic import command

    from db.migrate import alembic_config

    engine = make_engine(db_url)
    try:
        upgrade(db_url, "0002_scheduler")
        now = datetime(2026, 1, 1)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO sources (name) VALUES ('reverb')"))
            for n in (1, 2):
                connection.execute(
                    text(
                        "INSERT INTO listings (source_id, external_id, url, title, body, first_seen, last_seen,"
                        " images, extra, content_hash, record_hash)"
                        " VALUES (1, :n, :url, 'Korg MS-10', '', :t, :t, '[]', '{}', 'x', 'x')"
                    ),
                    {"n": str(n), "url": f"https://r/{n}", "t": now},
                )
            connection.execute(text("INSERT INTO instruments (model, serial) VALUES ('MS-10', '134458')"))
            for n, kind in ((1, "new"), (2, "duplicate_sale")):
                connection.execute(
                    text(
                        "INSERT INTO appearances (listing_id, instrument_id, detected_model, detected_serial,"
                        " kind, kind_locked, status, fits, seen_at, created_at)"
                        " VALUES (:n, 1, 'MS-10', '134458', :kind, false, 'counted', '[]', :t, :t)"
                    ),
                    {"n": n, "kind": kind, "t": now + timedelta(days=n)},
                )

        upgrade(db_url, "0004")
        assert current_revision(engine) == "0004"
        uniques = {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("instruments")}
        assert ("model", "serial", "unit") in uniques and ("model", "serial") not in uniques
        with engine.begin() as connection:
            assert connection.execute(text("SELECT id, unit FROM instruments")).all() == [(1, 1)]
            # What mark_different_unit writes: a unit 2 whose first sighting is listing 2.
            connection.execute(text("INSERT INTO instruments (model, serial, unit) VALUES ('MS-10', '134458', 2)"))
            connection.execute(text("UPDATE appearances SET instrument_id = 2, kind = 'new' WHERE listing_id = 2"))

        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002_scheduler")
        uniques = {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("instruments")}
        assert uniques == {("model", "serial")}
        with engine.begin() as connection:
            assert connection.execute(text("SELECT id, model, serial FROM instruments")).all() == [
                (1, "MS-10", "134458")
            ]
            rows = connection.execute(
                text("SELECT listing_id, instrument_id, kind FROM appearances ORDER BY listing_id")
            )
            assert rows.all() == [(1, 1, "new"), (2, 1, "duplicate_sale")]

        upgrade(db_url)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT id, unit FROM instruments")).all() == [(1, 1)]
    finally:
        engine.dispose()
