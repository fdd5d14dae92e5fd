"""The review log cannot be rewritten, and shows it if it was: a hash chain and the last ways round the triggers.

- SQLite: `INSERT OR REPLACE` deletes the row it replaces without firing the delete trigger, so an insert that
  names an existing id (or a second successor of an entry) is refused by a BEFORE INSERT trigger.
- PostgreSQL: `TRUNCATE review_log` (directly, or through `TRUNCATE flags CASCADE`) is refused by a BEFORE
  TRUNCATE trigger.
- Both: the links (`flag_id`, `appearance_id`) may only be cleared (what ON DELETE SET NULL does), never
  pointed elsewhere; `prev_hash` and `entry_hash` join the protected columns; the chain is filled in for the
  entries already there, oldest first.

Revision ID: 0006_review
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_review"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PROTECTED = "id, action, old_value, new_value, reviewer, at, note"
PROTECTED = f"{OLD_PROTECTED}, prev_hash, entry_hash"
LINK_MOVED = (
    "(NEW.flag_id IS NOT NULL AND NEW.flag_id IS DISTINCT FROM OLD.flag_id) OR "
    "(NEW.appearance_id IS NOT NULL AND NEW.appearance_id IS DISTINCT FROM OLD.appearance_id)"
)
REFUSE_SQLITE = "BEGIN SELECT RAISE(ABORT, 'review_log is append-only'); END"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _backfill() -> None:
    """Chain the entries written before this migration, in id order."""
    from db.models import UTCDateTime
    from db.review_chain import GENESIS, digest

    table = sa.table(
        "review_log",
        sa.column("id", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("old_value", sa.JSON()),
        sa.column("new_value", sa.JSON()),
        sa.column("reviewer", sa.String()),
        sa.column("at", UTCDateTime()),
        sa.column("note", sa.Text()),
        sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
    )
    bind = op.get_bind()
    prev = GENESIS
    rows = bind.execute(
        sa.select(
            table.c.id, table.c.action, table.c.old_value, table.c.new_value, table.c.reviewer, table.c.at, table.c.note
        ).order_by(table.c.id)
    ).all()
    for row in rows:
        entry_hash = digest(prev, row.action, row.old_value, row.new_value, row.reviewer, row.at, row.note)
        bind.execute(sa.update(table).where(table.c.id == row.id).values(prev_hash=prev, entry_hash=entry_hash))
        prev = entry_hash


def upgrade() -> None:
    op.add_column("review_log", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("review_log", sa.Column("entry_hash", sa.String(length=64), nullable=True))
    _backfill()
    op.create_index("uq_review_log_prev_hash", "review_log", ["prev_hash"], unique=True)
    if _sqlite():
        op.execute("DROP TRIGGER review_log_no_update")
        op.execute(f"CREATE TRIGGER review_log_no_update BEFORE UPDATE OF {PROTECTED} ON review_log {REFUSE_SQLITE}")
        op.execute(
            "CREATE TRIGGER review_log_links_only_cleared BEFORE UPDATE OF flag_id, appearance_id ON review_log "
            f"WHEN {LINK_MOVED.replace('IS DISTINCT FROM', 'IS NOT')} {REFUSE_SQLITE}"
        )
        op.execute(
            "CREATE TRIGGER review_log_no_replace BEFORE INSERT ON review_log WHEN "
            "EXISTS (SELECT 1 FROM review_log WHERE id = NEW.id OR prev_hash = NEW.prev_hash) "
            f"{REFUSE_SQLITE}"
        )
        return
    op.execute("DROP TRIGGER review_log_no_update ON review_log")
    op.execute(
        f"CREATE TRIGGER review_log_no_update BEFORE UPDATE OF {PROTECTED} ON review_log "
        "FOR EACH ROW EXECUTE FUNCTION review_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER review_log_links_only_cleared BEFORE UPDATE OF flag_id, appearance_id ON review_log "
        f"FOR EACH ROW WHEN ({LINK_MOVED}) EXECUTE FUNCTION review_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER review_log_no_truncate BEFORE TRUNCATE ON review_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION review_log_append_only()"
    )


def downgrade() -> None:
    on = "" if _sqlite() else " ON review_log"
    for name in (
        "review_log_no_replace",
        "review_log_no_truncate",
        "review_log_links_only_cleared",
        "review_log_no_update",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
    if _sqlite():
        op.execute(
            f"CREATE TRIGGER review_log_no_update BEFORE UPDATE OF {OLD_PROTECTED} ON review_log {REFUSE_SQLITE}"
        )
    else:
        op.execute(
            f"CREATE TRIGGER review_log_no_update BEFORE UPDATE OF {OLD_PROTECTED} ON review_log "
            "FOR EACH ROW EXECUTE FUNCTION review_log_append_only()"
        )
    op.drop_index("uq_review_log_prev_hash", table_name="review_log")
    op.drop_column("review_log", "entry_hash")
    op.drop_column("review_log", "prev_hash")
