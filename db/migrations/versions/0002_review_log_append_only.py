"""review_log is append-only: the database refuses to delete or rewrite a decision.

Only the links (flag_id, appearance_id) may change, because deleting a superseded appearance sets them NULL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROTECTED = "action, old_value, new_value, reviewer, at, note"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER review_log_no_delete BEFORE DELETE ON review_log "
            "BEGIN SELECT RAISE(ABORT, 'review_log is append-only'); END"
        )
        op.execute(
            f"CREATE TRIGGER review_log_no_update BEFORE UPDATE OF id, {PROTECTED} ON review_log "
            "BEGIN SELECT RAISE(ABORT, 'review_log is append-only'); END"
        )
        return
    op.execute(
        "CREATE FUNCTION review_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'review_log is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER review_log_no_delete BEFORE DELETE ON review_log "
        "FOR EACH ROW EXECUTE FUNCTION review_log_append_only()"
    )
    op.execute(
        f"CREATE TRIGGER review_log_no_update BEFORE UPDATE OF id, {PROTECTED} ON review_log "
        "FOR EACH ROW EXECUTE FUNCTION review_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS review_log_no_update" + ("" if _sqlite() else " ON review_log"))
    op.execute("DROP TRIGGER IF EXISTS review_log_no_delete" + ("" if _sqlite() else " ON review_log"))
    if not _sqlite():
        op.execute("DROP FUNCTION IF EXISTS review_log_append_only()")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
