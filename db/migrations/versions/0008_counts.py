"""Counts and summaries the review pages read instead of recounting every row per request.

- `flag_counts`: flags per (status, code), kept by triggers on `flags`. The queue's summary line reads a
  handful of rows instead of counting every open flag (98,156 at a million listings). On PostgreSQL each
  backend adds to its own `slot` (pid mod 8), so concurrent writers do not queue on one counter row; a reader
  sums the slots. Counts may sit at zero or, per slot, below it: only the sum means anything.
- `model_serials`: one row per instrument with a sighting that is not dismissed: its model, serial, first
  sighting, lowest listing id, and how many of its sightings are pending or counted; kept by triggers on
  `appearances`. The model page groups it per block and month through `ix_model_serials_model_first_seen`
  instead of aggregating every appearance of the model.
A new appearance adds itself to its instrument's row (min/plus); any other change of the columns the row
depends on (status, instrument, seen_at, listing) recomputes the rows of the instruments involved from their
appearances (through `ix_appearances_instrument_id_seen_at`). On PostgreSQL the triggers are per statement
with transition tables, and a recompute first locks the instruments involved (FOR UPDATE, which waits for
any transaction still adding an appearance to them: an insert holds KEY SHARE on its instrument), so that it
reads their committed appearances rather than overwrite a concurrent addition.

Revision ID: 0008_counts
Revises: 0009_photo_use (merged after the photo migrations, so it comes last)
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_counts"
down_revision: str | None = "0009_photo_use"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUMMARY_COLUMNS = "instrument_id, model, serial, first_seen, listing_id, pending, counted"
SET_SUMMARY = (
    "model = excluded.model, serial = excluded.serial, first_seen = excluded.first_seen,"
    " listing_id = excluded.listing_id, pending = excluded.pending, counted = excluded.counted"
)


def summary_select(where: str) -> str:
    """The summary rows of the instruments `where` picks, from their appearances that are not dismissed."""
    return (
        f"SELECT a.instrument_id, i.model, i.serial, min(a.seen_at), min(a.listing_id),"
        f" sum(CASE WHEN a.status = 'pending' THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN a.status = 'counted' THEN 1 ELSE 0 END)"
        f" FROM appearances a JOIN instruments i ON i.id = a.instrument_id"
        f" WHERE a.status <> 'dismissed' AND {where} GROUP BY a.instrument_id, i.model, i.serial"
    )


def recompute_sql(ids: str) -> list[str]:
    """Statements that make the summary rows of the instruments in `ids` (an SQL list) true again."""
    return [
        f"DELETE FROM model_serials WHERE instrument_id IN ({ids}) AND NOT EXISTS (SELECT 1 FROM appearances a"
        f" WHERE a.instrument_id = model_serials.instrument_id AND a.status <> 'dismissed')",
        f"INSERT INTO model_serials ({SUMMARY_COLUMNS}) {summary_select(f'a.instrument_id IN ({ids})')}"
        f" ON CONFLICT (instrument_id) DO UPDATE SET {SET_SUMMARY}",
    ]


def upgrade() -> None:
    op.create_table(
        "flag_counts",
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("status", "code", "slot", name=op.f("pk_flag_counts")),
    )
    op.create_table(
        "model_serials",
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(32), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["instruments.id"],
            name=op.f("fk_model_serials_instrument_id_instruments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instrument_id", name=op.f("pk_model_serials")),
    )
    # Covering indexes: the model page reads them without touching the table.
    op.create_index(
        "ix_model_serials_model_first_seen",
        "model_serials",
        ["model", "first_seen", "instrument_id", "serial", "pending", "listing_id"],
    )
    op.create_index("ix_model_serials_model_serial", "model_serials", ["model", "serial", "counted"])
    if op.get_bind().dialect.name == "sqlite":
        sqlite_triggers()
    else:
        postgresql_triggers()
    # Existing rows, counted once (the triggers keep them from here on).
    columns = "status, code, slot, n"
    op.execute(f"INSERT INTO flag_counts ({columns}) SELECT status, code, 0, count(*) FROM flags GROUP BY status, code")
    op.execute(f"INSERT INTO model_serials ({SUMMARY_COLUMNS}) {summary_select('1 = 1')}")


def sqlite_triggers() -> None:
    """Row triggers: SQLite has one writer at a time, and a row trigger is a few B-tree steps."""

    def add(status: str, code: str, delta: int) -> str:
        return (
            f"INSERT INTO flag_counts (status, code, slot, n) VALUES ({status}, {code}, 0, {delta})"
            f" ON CONFLICT (status, code, slot) DO UPDATE SET n = n + ({delta});"
        )

    op.execute(f"CREATE TRIGGER flag_counts_insert AFTER INSERT ON flags BEGIN {add('NEW.status', 'NEW.code', 1)} END")
    op.execute(f"CREATE TRIGGER flag_counts_delete AFTER DELETE ON flags BEGIN {add('OLD.status', 'OLD.code', -1)} END")
    op.execute(
        "CREATE TRIGGER flag_counts_update AFTER UPDATE OF status, code ON flags"
        " WHEN OLD.status IS NOT NEW.status OR OLD.code IS NOT NEW.code"
        f" BEGIN {add('OLD.status', 'OLD.code', -1)} {add('NEW.status', 'NEW.code', 1)} END"
    )
    op.execute(
        "CREATE TRIGGER model_serials_insert AFTER INSERT ON appearances WHEN NEW.status <> 'dismissed' BEGIN"
        f" INSERT INTO model_serials ({SUMMARY_COLUMNS}) SELECT i.id, i.model, i.serial, NEW.seen_at,"
        " NEW.listing_id, NEW.status = 'pending', NEW.status = 'counted' FROM instruments i"
        " WHERE i.id = NEW.instrument_id ON CONFLICT (instrument_id) DO UPDATE SET"
        " first_seen = min(first_seen, excluded.first_seen), listing_id = min(listing_id, excluded.listing_id),"
        " pending = pending + excluded.pending, counted = counted + excluded.counted; END"
    )
    both = "OLD.instrument_id, NEW.instrument_id"
    op.execute(
        "CREATE TRIGGER model_serials_update AFTER UPDATE OF instrument_id, status, seen_at, listing_id"
        " ON appearances WHEN OLD.instrument_id IS NOT NEW.instrument_id OR OLD.status IS NOT NEW.status"
        " OR OLD.seen_at IS NOT NEW.seen_at OR OLD.listing_id IS NOT NEW.listing_id BEGIN "
        + " ".join(f"{s};" for s in recompute_sql(both))
        + " END"
    )
    op.execute(
        "CREATE TRIGGER model_serials_delete AFTER DELETE ON appearances BEGIN "
        + " ".join(f"{s};" for s in recompute_sql("OLD.instrument_id"))
        + " END"
    )
    op.execute(
        "CREATE TRIGGER model_serials_instrument AFTER UPDATE OF model, serial ON instruments BEGIN"
        " UPDATE model_serials SET model = NEW.model, serial = NEW.serial WHERE instrument_id = NEW.id; END"
    )


def postgresql_triggers() -> None:
    """Statement triggers with transition tables: one upsert per statement, however many rows it wrote."""
    slot = "(pg_backend_pid() % 8)"
    op.execute(
        "CREATE FUNCTION flag_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF TG_OP = 'INSERT' THEN"
        f"  INSERT INTO flag_counts (status, code, slot, n) SELECT status, code, {slot}, count(*) FROM new_rows"
        "   GROUP BY status, code ORDER BY status, code"
        "   ON CONFLICT (status, code, slot) DO UPDATE SET n = flag_counts.n + excluded.n;"
        " ELSIF TG_OP = 'DELETE' THEN"
        f"  INSERT INTO flag_counts (status, code, slot, n) SELECT status, code, {slot}, -count(*) FROM old_rows"
        "   GROUP BY status, code ORDER BY status, code"
        "   ON CONFLICT (status, code, slot) DO UPDATE SET n = flag_counts.n + excluded.n;"
        " ELSE"
        f"  INSERT INTO flag_counts (status, code, slot, n) SELECT status, code, {slot}, sum(d) FROM"
        "   (SELECT status, code, 1 AS d FROM new_rows UNION ALL SELECT status, code, -1 FROM old_rows) c"
        "   GROUP BY status, code HAVING sum(d) <> 0 ORDER BY status, code"
        "   ON CONFLICT (status, code, slot) DO UPDATE SET n = flag_counts.n + excluded.n;"
        " END IF; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER flag_counts_insert AFTER INSERT ON flags REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION flag_counts_apply()"
    )
    op.execute(
        "CREATE TRIGGER flag_counts_delete AFTER DELETE ON flags REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION flag_counts_apply()"
    )
    op.execute(
        "CREATE TRIGGER flag_counts_update AFTER UPDATE ON flags REFERENCING OLD TABLE AS old_rows"
        " NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flag_counts_apply()"
    )
    recompute = " ".join(f"{s};" for s in recompute_sql("SELECT unnest(ids)"))
    op.execute(
        "CREATE FUNCTION model_serials_apply() RETURNS trigger LANGUAGE plpgsql AS $$"
        " DECLARE ids integer[]; BEGIN"
        " IF TG_OP = 'INSERT' THEN"
        f"  INSERT INTO model_serials ({SUMMARY_COLUMNS}) SELECT n.instrument_id, i.model, i.serial,"
        "   min(n.seen_at), min(n.listing_id), count(*) FILTER (WHERE n.status = 'pending'),"
        "   count(*) FILTER (WHERE n.status = 'counted') FROM new_rows n JOIN instruments i ON i.id = n.instrument_id"
        "   WHERE n.status <> 'dismissed' GROUP BY n.instrument_id, i.model, i.serial ORDER BY n.instrument_id"
        "   ON CONFLICT (instrument_id) DO UPDATE SET"
        "   first_seen = least(model_serials.first_seen, excluded.first_seen),"
        "   listing_id = least(model_serials.listing_id, excluded.listing_id),"
        "   pending = model_serials.pending + excluded.pending, counted = model_serials.counted + excluded.counted;"
        "  RETURN NULL;"
        " ELSIF TG_OP = 'DELETE' THEN"
        "  ids := ARRAY(SELECT DISTINCT instrument_id FROM old_rows ORDER BY 1);"
        " ELSE"
        "  ids := ARRAY(SELECT DISTINCT x FROM (SELECT o.instrument_id, n.instrument_id FROM old_rows o"
        "   JOIN new_rows n ON n.id = o.id WHERE (o.instrument_id, o.status, o.seen_at, o.listing_id)"
        "   IS DISTINCT FROM (n.instrument_id, n.status, n.seen_at, n.listing_id)) c(a, b),"
        "   LATERAL (VALUES (a), (b)) v(x) ORDER BY 1);"
        " END IF;"
        " IF cardinality(ids) > 0 THEN"
        "  PERFORM 1 FROM instruments WHERE id = ANY(ids) ORDER BY id FOR UPDATE;"
        f"  {recompute}"
        " END IF; RETURN NULL; END $$"
    )
    for event, refs in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER model_serials_{event.lower()} AFTER {event} ON appearances REFERENCING {refs}"
            " FOR EACH STATEMENT EXECUTE FUNCTION model_serials_apply()"
        )
    op.execute(
        "CREATE FUNCTION model_serials_instrument() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " UPDATE model_serials SET model = NEW.model, serial = NEW.serial WHERE instrument_id = NEW.id;"
        " RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER model_serials_instrument AFTER UPDATE OF model, serial ON instruments"
        " FOR EACH ROW EXECUTE FUNCTION model_serials_instrument()"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    triggers = {
        "flags": ("flag_counts_insert", "flag_counts_delete", "flag_counts_update"),
        "appearances": ("model_serials_insert", "model_serials_update", "model_serials_delete"),
        "instruments": ("model_serials_instrument",),
    }
    for table, names in triggers.items():
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name}" + ("" if sqlite else f" ON {table}"))
    if not sqlite:
        for function in ("flag_counts_apply", "model_serials_apply", "model_serials_instrument"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_index("ix_model_serials_model_serial", table_name="model_serials")
    op.drop_index("ix_model_serials_model_first_seen", table_name="model_serials")
    op.drop_table("model_serials")
    op.drop_table("flag_counts")
