"""Migration 0006_faults on a store with history: every run and every worker's row survives the way up (where
SQLite rebuilds `crawl_runs`) and the way down; `interrupted` is accepted only after it."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db.engine import make_engine
from db.migrate import alembic_config, upgrade

RUNS = "SELECT id, outcome, pages FROM crawl_runs ORDER BY id"
WORKERS = "SELECT crawl_run_id, worker, pages FROM crawl_run_workers ORDER BY crawl_run_id, worker"


def test_0006_keeps_runs_and_their_workers_both_ways(db_url: str) -> None:
    upgrade(db_url, "0005")
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO sources (name) VALUES ('reverb')"))
            for run_id, outcome in ((1, "ok"), (2, "degraded")):
                connection.execute(
                    text(
                        "INSERT INTO crawl_runs (id, source_id, started_at, outcome, pages, listings_new, "
                        "listings_updated, flags_raised, errors) VALUES (:id, 1, '2026-12-01 10:00:00', :outcome, "
                        ":id, 0, 0, 0, 0)"
                    ),
                    {"id": run_id, "outcome": outcome},
                )
                connection.execute(
                    text(
                        "INSERT INTO crawl_run_workers (crawl_run_id, worker, pages, listings_new, listings_updated, "
                        "listings_unchanged, flags_raised, errors, first_at, last_at) VALUES (:id, 'w1', :id, 0, 0, "
                        "0, 0, 0, '2026-12-01 10:00:00', '2026-12-01 10:00:00')"
                    ),
                    {"id": run_id},
                )
            with pytest.raises(IntegrityError), connection.begin_nested():
                connection.execute(text("UPDATE crawl_runs SET outcome = 'interrupted' WHERE id = 1"))
            runs = connection.execute(text(RUNS)).all()
            workers = connection.execute(text(WORKERS)).all()

        upgrade(db_url)
        with engine.begin() as connection:
            assert connection.execute(text(RUNS)).all() == runs
            assert connection.execute(text(WORKERS)).all() == workers
            connection.execute(text("UPDATE crawl_runs SET outcome = 'interrupted', incomplete = true WHERE id = 2"))

        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        with engine.begin() as connection:
            assert connection.execute(text(RUNS)).all() == [runs[0], (2, "failed", 2)]  # no `interrupted` below
            assert connection.execute(text(WORKERS)).all() == workers
    finally:
        engine.dispose()
