"""Photos kept as evidence: `photos` (each file once, by sha256, with its perceptual hashes), `listing_photos`
(each listing's photos by position: kept, refused or failed, and why) and `photo_hash_bands` (the near-duplicate
index on pHash bands).

Revision ID: 0008_photos
Revises: 0007_notify
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_photos"
down_revision: str | None = "0007_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("dhash", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photos")),
        sa.UniqueConstraint("sha256", name=op.f("uq_photos_sha256")),
    )
    op.create_table(
        "listing_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("photo_id", sa.Integer(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('kept', 'refused', 'failed')", name=op.f("ck_listing_photos_status")),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_photos_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name=op.f("fk_listing_photos_photo_id_photos")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_photos")),
        sa.UniqueConstraint("listing_id", "position", name=op.f("uq_listing_photos_listing_id_position")),
    )
    op.create_index("ix_listing_photos_photo_id", "listing_photos", ["photo_id"])
    op.create_index("ix_listing_photos_source_url", "listing_photos", ["source_url"])
    op.create_table(
        "photo_hash_bands",
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["photos.id"],
            name=op.f("fk_photo_hash_bands_photo_id_photos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("band", "value", "photo_id", name=op.f("pk_photo_hash_bands")),
    )
    op.create_index("ix_photo_hash_bands_photo_id", "photo_hash_bands", ["photo_id"])


def downgrade() -> None:
    op.drop_index("ix_photo_hash_bands_photo_id", table_name="photo_hash_bands")
    op.drop_table("photo_hash_bands")
    op.drop_index("ix_listing_photos_source_url", table_name="listing_photos")
    op.drop_index("ix_listing_photos_photo_id", table_name="listing_photos")
    op.drop_table("listing_photos")
    op.drop_table("photos")
