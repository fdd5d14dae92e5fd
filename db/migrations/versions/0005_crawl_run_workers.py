"""Distributed crawling: `crawl_run_workers`, what each worker did for one run (`korgwatch runs` shows it).

A distributed run is a `crawl_runs` row written by `korgwatch enqueue` with outcome NULL while it runs; its
workers add their counts to it and to their own row here.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crawl_run_workers",
        sa.Column("crawl_run_id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("listings_new", sa.Integer(), nullable=False),
        sa.Column("listings_updated", sa.Integer(), nullable=False),
        sa.Column("listings_unchanged", sa.Integer(), nullable=False),
        sa.Column("flags_raised", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["crawl_run_id"],
            ["crawl_runs.id"],
            name=op.f("fk_crawl_run_workers_crawl_run_id_crawl_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("crawl_run_id", "worker", name=op.f("pk_crawl_run_workers")),
    )


def downgrade() -> None:
    op.drop_table("crawl_run_workers")
