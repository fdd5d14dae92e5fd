"""Crash safety: a crawl run is recorded when it starts, and one found open with its process gone closes
`interrupted`; the open row of a live process is the source's lease ("one crawl per source at a time").

- `crawl_runs.outcome` may be `interrupted`;
- `crawl_runs.owner` ("host:pid:start-ticks") names the process running a local crawl (NULL: distributed);
- `crawl_runs.paged_in_full` says the run paged to the end instead of stopping at known listings;
- `crawl_runs.incomplete` says the run lost work (killed, a dead worker): the next run pages in full.

SQLite cannot alter a CHECK constraint, so `crawl_runs` is rebuilt there; its children in
`crawl_run_workers` are kept aside and put back (dropping the parent would cascade-delete them).

Revision ID: 0006_faults
Revises: 0006_review
Create Date: 2026-12-02 11:00:00.000000
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_faults"
down_revision: str | None = "0006_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CHECK = "outcome IS NULL OR outcome IN ('ok', 'degraded', 'failed', 'timed_out')"
NEW_CHECK = "outcome IS NULL OR outcome IN ('ok', 'degraded', 'failed', 'timed_out', 'interrupted')"
WORKERS = "crawl_run_workers"


def _sqlite_swap_check(old: str, new: str) -> None:
    """Rebuild `crawl_runs` with CHECK `new` in place of `old`, keeping every row and its workers' rows."""
    bind = op.get_bind()
    create = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'crawl_runs'")
    sql = create.scalar_one()
    if old not in sql:
        raise RuntimeError(f"crawl_runs has an unexpected outcome constraint: {sql}")
    sql = re.sub(r'^CREATE TABLE "?crawl_runs"?', "CREATE TABLE _new_crawl_runs", sql.replace(old, new), count=1)
    op.execute("PRAGMA defer_foreign_keys = ON")  # settled at commit; this transaction only
    op.execute(f"CREATE TEMPORARY TABLE _old_workers AS SELECT * FROM {WORKERS}")
    op.execute("CREATE TEMPORARY TABLE _old_crawl_runs AS SELECT * FROM crawl_runs")
    op.execute(f"DELETE FROM {WORKERS}")
    op.execute("DELETE FROM crawl_runs")
    op.execute(sql)
    op.execute("DROP TABLE crawl_runs")
    op.execute("ALTER TABLE _new_crawl_runs RENAME TO crawl_runs")
    op.execute("INSERT INTO crawl_runs SELECT * FROM _old_crawl_runs")
    op.execute(f"INSERT INTO {WORKERS} SELECT * FROM _old_workers")
    op.execute("DROP TABLE _old_crawl_runs")
    op.execute("DROP TABLE _old_workers")
    op.create_index("ix_crawl_runs_source_id_started_at", "crawl_runs", ["source_id", "started_at"], unique=False)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_swap_check(OLD_CHECK, NEW_CHECK)
    else:
        op.drop_constraint(op.f("ck_crawl_runs_outcome"), "crawl_runs", type_="check")
        op.create_check_constraint(op.f("ck_crawl_runs_outcome"), "crawl_runs", NEW_CHECK)
    # Plain ALTER TABLE ADD COLUMN on both backends (a batch copy would cascade-delete the workers' rows).
    op.add_column("crawl_runs", sa.Column("owner", sa.String(length=200), nullable=True))
    op.add_column("crawl_runs", sa.Column("paged_in_full", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("crawl_runs", sa.Column("incomplete", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.execute("UPDATE crawl_runs SET outcome = 'failed' WHERE outcome = 'interrupted'")
    for column in ("incomplete", "paged_in_full", "owner"):
        op.execute(f"ALTER TABLE crawl_runs DROP COLUMN {column}")  # SQLite >= 3.35 and PostgreSQL alike
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_swap_check(NEW_CHECK, OLD_CHECK)
    else:
        op.drop_constraint(op.f("ck_crawl_runs_outcome"), "crawl_runs", type_="check")
        op.create_check_constraint(op.f("ck_crawl_runs_outcome"), "crawl_runs", OLD_CHECK)
