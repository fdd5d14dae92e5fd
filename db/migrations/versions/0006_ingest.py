"""Exact prices and the analyser's cut: `listings.price` NUMERIC(18, 2) on PostgreSQL and the decimal's text on
SQLite (whose NUMERIC columns hold floats: 123456789012345.99 came back as …345.98); `listings.analysis_cut`
names the fields the analyser read only in part (the full text is stored).

SQLite cannot change a column's type in place; `price` has no index or constraint, so a new TEXT column takes
the values (as two-decimal text), the old one is dropped and the new one renamed (SQLite 3.35+), with no copy of
the table and its children.

Revision ID: 0006_ingest
Revises: 0006_faults
Create Date: 2026-12-02 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_ingest"
down_revision: str | None = "0006_faults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _sqlite_retype_price(declared: str, value: str) -> None:
    op.execute(f"ALTER TABLE listings ADD COLUMN price_new {declared}")
    op.execute(f"UPDATE listings SET price_new = {value} WHERE price IS NOT NULL")
    op.execute("ALTER TABLE listings DROP COLUMN price")
    op.execute("ALTER TABLE listings RENAME COLUMN price_new TO price")


def upgrade() -> None:
    if _sqlite():
        _sqlite_retype_price("TEXT", "printf('%.2f', price)")
        op.execute("ALTER TABLE listings ADD COLUMN analysis_cut JSON")
        return
    op.alter_column(
        "listings", "price", type_=sa.Numeric(18, 2), existing_type=sa.Numeric(14, 2), existing_nullable=True
    )
    op.add_column("listings", sa.Column("analysis_cut", sa.JSON(), nullable=True))


def downgrade() -> None:
    if _sqlite():
        op.execute("ALTER TABLE listings DROP COLUMN analysis_cut")
        _sqlite_retype_price("NUMERIC(14, 2)", "price")
        return
    op.drop_column("listings", "analysis_cut")
    op.execute("UPDATE listings SET price = NULL WHERE abs(price) >= 1e12")  # what NUMERIC(14, 2) cannot hold
    op.alter_column(
        "listings", "price", type_=sa.Numeric(14, 2), existing_type=sa.Numeric(18, 2), existing_nullable=True
    )
