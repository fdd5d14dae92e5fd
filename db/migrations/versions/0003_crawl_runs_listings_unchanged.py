"""Scheduler: crawl_runs.listings_unchanged, so health can compare what each run saw, not only what was new.

The job store's own table (`apscheduler_jobs`) is created by APScheduler's SQLAlchemyJobStore on start; it is
APScheduler's schema, not ours, so it stays out of these migrations and of `db.models`.

Revision ID: 0002_scheduler
Revises: 0002 (review_log append-only; both were written at once as "0002")
Create Date: 2026-11-25 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_scheduler"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listings_unchanged", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.drop_column("listings_unchanged")
