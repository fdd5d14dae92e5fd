"""Why an appearance got its kind: `appearances.kind_evidence` (JSON), e.g. the pair of near-identical photos
that made a later listing of a serial a `repost` of an earlier one, so the review page can show the reason.

Revision ID: 0009_photo_use
Revises: 0008_photos
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_photo_use"
down_revision: str | None = "0008_photos"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("appearances", sa.Column("kind_evidence", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("appearances") as batch:
        batch.drop_column("kind_evidence")
