"""Instrument units: two physical instruments may share a model and serial (the register's "a second MS-10
with this serial number"). `instruments.unit` (1 unless a reviewer says otherwise) joins the unique key, so the
partial index "one `new` per instrument" now means one first sighting per unit.

Downgrade folds every unit > 1 back into unit 1 of its serial (its first sighting becomes a duplicate sale)
before the old key (model, serial) returns: no appearance is lost, only the reviewer's split.

SQLite cannot drop a UNIQUE constraint, so the table is rebuilt there. Alembic's batch copy would trip the
foreign keys of `appearances` (PRAGMA foreign_keys cannot be switched off inside the migration's transaction,
and dropping the old copy counts every appearance as orphaned until commit), so the rebuild here empties the
old table, swaps in the new one and inserts the rows again: re-inserting a parent row settles its children.

Revision ID: 0004
Revises: 0002_scheduler
Create Date: 2026-11-25 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_TABLE = """CREATE TABLE _new_instruments (
    id INTEGER NOT NULL,
    model VARCHAR(64) NOT NULL,
    serial VARCHAR(32) NOT NULL,
    unit INTEGER DEFAULT 1 NOT NULL,
    CONSTRAINT pk_instruments PRIMARY KEY (id),
    CONSTRAINT uq_instruments_model_serial_unit UNIQUE (model, serial, unit),
    CONSTRAINT ck_instruments_unit CHECK (unit >= 1)
)"""
OLD_TABLE = """CREATE TABLE _new_instruments (
    id INTEGER NOT NULL,
    model VARCHAR(64) NOT NULL,
    serial VARCHAR(32) NOT NULL,
    CONSTRAINT pk_instruments PRIMARY KEY (id),
    CONSTRAINT uq_instruments_model_serial UNIQUE (model, serial)
)"""


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _sqlite_rebuild(create: str, columns: str) -> None:
    """Replace `instruments` with the table `create` makes, keeping `columns` of every row."""
    op.execute("PRAGMA defer_foreign_keys = ON")  # settled at commit; this transaction only
    op.execute(f"CREATE TEMPORARY TABLE _old_instruments AS SELECT {columns} FROM instruments")
    op.execute(create)
    op.execute("DELETE FROM instruments")
    op.execute("DROP TABLE instruments")
    op.execute("ALTER TABLE _new_instruments RENAME TO instruments")
    op.execute(f"INSERT INTO instruments ({columns}) SELECT {columns} FROM _old_instruments")
    op.execute("DROP TABLE _old_instruments")
    op.create_index("ix_instruments_serial", "instruments", ["serial"], unique=False)


def upgrade() -> None:
    if _sqlite():
        _sqlite_rebuild(NEW_TABLE, "id, model, serial")
        return
    op.add_column("instruments", sa.Column("unit", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.drop_constraint(op.f("uq_instruments_model_serial"), "instruments", type_="unique")
    op.create_unique_constraint(op.f("uq_instruments_model_serial_unit"), "instruments", ["model", "serial", "unit"])
    op.create_check_constraint(op.f("ck_instruments_unit"), "instruments", "unit >= 1")


def downgrade() -> None:
    extra = "SELECT id FROM instruments WHERE unit > 1"
    op.execute(f"UPDATE appearances SET kind = 'duplicate_sale' WHERE kind = 'new' AND instrument_id IN ({extra})")
    op.execute(
        "UPDATE appearances SET instrument_id = ("
        " SELECT first.id FROM instruments AS first JOIN instruments AS other"
        " ON first.model = other.model AND first.serial = other.serial AND first.unit = 1"
        " WHERE other.id = appearances.instrument_id)"
        f" WHERE instrument_id IN ({extra})"
    )
    op.execute("DELETE FROM instruments WHERE unit > 1")
    if _sqlite():
        _sqlite_rebuild(OLD_TABLE, "id, model, serial")
        return
    op.drop_constraint(op.f("ck_instruments_unit"), "instruments", type_="check")
    op.drop_constraint(op.f("uq_instruments_model_serial_unit"), "instruments", type_="unique")
    op.create_unique_constraint(op.f("uq_instruments_model_serial"), "instruments", ["model", "serial"])
    op.drop_column("instruments", "unit")
