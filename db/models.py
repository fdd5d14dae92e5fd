"""The korgwatch schema: one DeclarativeBase, typed models, and the constraints the data must keep.

Uniqueness, foreign keys and allowed values live in the schema (not only in Python) so that the crawler,
`korgwatch ingest` and the review page can write at the same time without corrupting the register.
Changes go through Alembic migrations in `db/migrations/`; this module is their `target_metadata`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

APPEARANCE_KINDS = ("new", "duplicate_sale", "repost")
APPEARANCE_STATUSES = ("counted", "pending", "dismissed")
FLAG_STATUSES = ("open", "confirmed", "corrected", "dismissed")
CRAWL_OUTCOMES = ("ok", "degraded", "failed", "timed_out", "interrupted")
PHOTO_STATUSES = ("kept", "refused", "failed")

# Stable constraint names so Alembic migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends: SQLite forgets the offset, so it is restored on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """Money as an exact decimal with two places: NUMERIC(18, 2) on PostgreSQL, the decimal's text on SQLite.

    SQLite has no decimal type: a NUMERIC column turns "123456789012345.99" into a float (…345.98), so the
    SQLite column is TEXT (migration 0006_ingest) and holds the value as written, e.g. "850.00".
    """

    impl = Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(18, 2))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return f"{Decimal(value) if isinstance(value, str) else value:.2f}"

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(value if isinstance(value, str) else str(value))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Source(Base):
    """A site listings come from ("matrixsynth", "reverb"); the same name as in config and the crawler."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Listing(Base):
    """One listing as last seen, keyed by the source's own id so re-crawls update rather than duplicate."""

    __tablename__ = "listings"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_listings_url", "url"),
        Index("ix_listings_first_seen", "first_seen"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    seller: Mapped[str | None] = mapped_column(String(255))
    price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    currency: Mapped[str | None] = mapped_column(String(8))
    posted_at: Mapped[datetime | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    images: Mapped[list[str]] = mapped_column(default=list)
    content_hash: Mapped[str] = mapped_column(String(64))  # title + body: a change makes a revision
    record_hash: Mapped[str] = mapped_column(String(64))  # every stored field: a change makes an update
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The fields the analyser read only in part ("title: first 2048 of 52428800 characters read"), else NULL.
    analysis_cut: Mapped[list[str] | None] = mapped_column(JSON)

    source: Mapped[Source] = relationship()


class ListingRevision(Base):
    """The title/body a listing had before it changed: sellers edit serials; reviewers need the old text."""

    __tablename__ = "listing_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    replaced_at: Mapped[datetime]


class Instrument(Base):
    """One physical instrument as the register knows it: a model, its serial number and which unit.

    `unit` is 1 unless a reviewer found a second physical unit carrying the same serial (the register's
    "A second MS-10 with this serial number. Visibly different from the first."): that one is unit 2, with its
    own first sighting, so the one-`new`-per-instrument index holds per unit (migration 0004).
    """

    __tablename__ = "instruments"
    __table_args__ = (
        UniqueConstraint("model", "serial", "unit"),
        CheckConstraint("unit >= 1", name="unit"),
        Index("ix_instruments_serial", "serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(32))
    unit: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class Appearance(Base):
    """An instrument seen in a listing: the register's unit of evidence ("a1", "a2" on the seed page).

    `detected_model`/`detected_serial` are what the analyser read, so a re-analysis finds the same row even
    after a reviewer corrected `instrument_id`. `seen_at` dates the sighting (the listing's posted time, else
    when korgwatch first saw it) and orders the appearances of an instrument.
    """

    __tablename__ = "appearances"
    __table_args__ = (
        UniqueConstraint("listing_id", "detected_model", "detected_serial"),
        CheckConstraint(_in("kind", APPEARANCE_KINDS), name="kind"),
        CheckConstraint(_in("status", APPEARANCE_STATUSES), name="status"),
        CheckConstraint("serial_field IS NULL OR serial_field IN ('title', 'body')", name="serial_field"),
        Index("ix_appearances_instrument_id_seen_at", "instrument_id", "seen_at"),
        Index("ix_appearances_seen_at", "seen_at"),
        # At most one first sighting per instrument, even with concurrent writers.
        Index(
            "uq_appearances_one_new_per_instrument",
            "instrument_id",
            unique=True,
            sqlite_where=text("kind = 'new'"),
            postgresql_where=text("kind = 'new'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id"))
    detected_model: Mapped[str] = mapped_column(String(64))
    detected_serial: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    kind_locked: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16))
    serial_raw: Mapped[str | None] = mapped_column(String(64))
    serial_field: Mapped[str | None] = mapped_column(String(8))
    serial_start: Mapped[int | None] = mapped_column(Integer)
    serial_end: Mapped[int | None] = mapped_column(Integer)
    fits: Mapped[list[str]] = mapped_column(default=list)
    # Why the classifier chose `kind` when a rule left a trace: {"rule": "same_photo", "earlier": ..., ...}
    # (db.photo_matching); None for the other rules. Migration 0009_photo_use.
    kind_evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    seen_at: Mapped[datetime]
    created_at: Mapped[datetime]
    reviewed_at: Mapped[datetime | None]

    listing: Mapped[Listing] = relationship()
    instrument: Mapped[Instrument] = relationship()


class Flag(Base):
    """Something a reviewer must decide, on an appearance or (when no serial was found) on a listing."""

    __tablename__ = "flags"
    __table_args__ = (
        CheckConstraint(_in("status", FLAG_STATUSES), name="status"),
        Index("ix_flags_status_created_at", "status", "created_at"),
        Index("ix_flags_appearance_id", "appearance_id"),
        Index("ix_flags_listing_id", "listing_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    appearance_id: Mapped[int | None] = mapped_column(ForeignKey("appearances.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    reviewer: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)

    listing: Mapped[Listing] = relationship()
    appearance: Mapped[Appearance | None] = relationship()


class ReviewLog(Base):
    """Append-only record of every review decision: who changed what, from what, to what, and why.

    The schema refuses UPDATE, DELETE, INSERT OR REPLACE and TRUNCATE (migrations 0002, 0006_review); each
    entry is chained by hash to the one before (`korgwatch review verify-log`).
    """

    __tablename__ = "review_log"
    __table_args__ = (
        Index("ix_review_log_flag_id", "flag_id"),
        Index("ix_review_log_appearance_id", "appearance_id"),
        # One successor per entry: two writers cannot fork the chain (migration 0006_review).
        Index("uq_review_log_prev_hash", "prev_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("flags.id", ondelete="SET NULL"))
    appearance_id: Mapped[int | None] = mapped_column(ForeignKey("appearances.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_value: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reviewer: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    # The hash chain (db/review_chain.py): the previous entry's hash, and this entry's over it and its content.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))


class RegisterEntry(Base):
    """A serial already on the register page: such serials are not "new" and are left out of exports."""

    __tablename__ = "register_entries"
    __table_args__ = (
        UniqueConstraint("model", "serial", "url"),
        Index("ix_register_entries_serial", "serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(32))
    date: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    # '' rather than NULL so that the unique key makes re-imports idempotent on every backend.
    url: Mapped[str] = mapped_column(Text, default="", server_default="")


class CrawlRun(Base):
    """One crawl of one source: the crawler's health as data (a run that found nothing is not a success)."""

    __tablename__ = "crawl_runs"
    __table_args__ = (
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', CRAWL_OUTCOMES)}", name="outcome"),
        Index("ix_crawl_runs_source_id_started_at", "source_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    pages: Mapped[int] = mapped_column(default=0)
    listings_new: Mapped[int] = mapped_column(default=0)
    listings_updated: Mapped[int] = mapped_column(default=0)
    flags_raised: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    log_tail: Mapped[str | None] = mapped_column(Text)

    source: Mapped[Source] = relationship()

    # --- scheduler (issue 5, migration 0002) ----------------------------------------------------------
    # Listings the run read but found unchanged: with new + updated, what it saw, so that health can tell
    # "nothing new today" from "nothing found: the layout changed?". NULL when the writer did not say.
    listings_unchanged: Mapped[int | None] = mapped_column(Integer)

    # --- distributed crawling (issue 7, migration 0005) -----------------------------------------------
    workers: Mapped[list[CrawlRunWorker]] = relationship(
        back_populates="crawl_run", cascade="all, delete-orphan", order_by="CrawlRunWorker.worker"
    )

    # --- crash safety (issue 17, migration 0006_faults) -----------------------------------------------
    # "host:pid:start-ticks" of the process running a local crawl; its open row is the source's lease, and
    # a row left open by a process that is gone closes `interrupted` (NULL: a distributed run).
    owner: Mapped[str | None] = mapped_column(String(200))
    # The run paged to the end instead of stopping at the first page of known listings.
    paged_in_full: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The run lost work (its process killed, a worker dead): the source's next crawl pages in full.
    incomplete: Mapped[bool] = mapped_column(default=False, server_default=false())


class CrawlRunWorker(Base):
    """What one worker did for one distributed run; the run's own totals are the sums over its workers.

    A distributed run (`korgwatch enqueue`) starts with outcome NULL (running); workers add their counts here
    and to `crawl_runs` with `x = x + n` updates, so that any number of them can report at once.
    """

    __tablename__ = "crawl_run_workers"

    crawl_run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"), primary_key=True)
    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    pages: Mapped[int] = mapped_column(default=0)
    listings_new: Mapped[int] = mapped_column(default=0)
    listings_updated: Mapped[int] = mapped_column(default=0)
    listings_unchanged: Mapped[int] = mapped_column(default=0)
    flags_raised: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]

    crawl_run: Mapped[CrawlRun] = relationship(back_populates="workers")


# --- notifications and watchlists (issue 16, migration 0007_notify) -------------------------------------------
NOTIFICATION_STATUSES = ("pending", "delivered")


class NotifyEvent(Base):
    """Something worth telling (a new sighting, a flag, a failed crawl…), recorded once by its stable key.

    The key is made from the row it comes from ("new_sighting:appearance:42"), so collecting twice, or from two
    processes, records it once; its messages per target are `Notification` rows.
    """

    __tablename__ = "notify_events"
    __table_args__ = (Index("ix_notify_events_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    crawl_run_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class Notification(Base):
    """One message to one target, with its delivery state: the outbox the notifier sends from.

    `pending` until a send succeeded and was recorded (`delivered`); a failed send sets `next_attempt_at` (backoff)
    and `last_error` (secrets redacted). A sender holds `lease_owner`/`lease_until` while sending, so a second
    notifier does not send the same message meanwhile; a lease of a dead process, or an expired one, is taken over.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("message_key", "target"),
        CheckConstraint(_in("status", NOTIFICATION_STATUSES), name="status"),
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_key: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]


class NotifyState(Base):
    """Small facts the notifier keeps between runs: since when it collects, whether the backlog was told."""

    __tablename__ = "notify_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Watch(Base):
    """A watched model, serial or serial range (a stolen unit, a model the keeper collects).

    `serial_low`/`serial_high` are '' for a watch on the whole model, equal for one serial, else a range.
    """

    __tablename__ = "watches"
    __table_args__ = (UniqueConstraint("model", "serial_low", "serial_high"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    serial_low: Mapped[str] = mapped_column(String(32), default="")
    serial_high: Mapped[str] = mapped_column(String(32), default="")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class Photo(Base):
    """One kept image file, content-addressed: stored once under its sha256 however many listings show it.

    The file and its thumbnail live under the data directory (`photos/<sha[:2]>/<sha>`), never at a path a
    listing chose. `phash`/`dhash` are imagehash's 64-bit perceptual hashes, stored as signed integers (the
    unsigned value minus 2**63 when its top bit is set) so both backends keep them in a BIGINT.
    """

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    phash: Mapped[int] = mapped_column(BigInteger)
    dhash: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class ListingPhoto(Base):
    """A listing's photo at one position: where it came from and what the crawl did with it.

    `status` is `kept` (then `photo_id` names the file), `refused` (it broke a limit: size, type, pixels) or
    `failed` (the fetch itself failed), with `reason` saying which; the listing is stored either way.
    """

    __tablename__ = "listing_photos"
    __table_args__ = (
        UniqueConstraint("listing_id", "position"),
        CheckConstraint(_in("status", PHOTO_STATUSES), name="status"),
        Index("ix_listing_photos_photo_id", "photo_id"),
        Index("ix_listing_photos_source_url", "source_url"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    source_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id"))
    fetched_at: Mapped[datetime]

    photo: Mapped[Photo | None] = relationship()


class PhotoHashBand(Base):
    """One 16-bit quarter of a photo's pHash: the index that finds near-duplicates without scanning them all.

    Two 64-bit hashes within Hamming distance 3 agree exactly on at least one of their four bands (pigeonhole),
    so a look-up reads four index ranges and checks the full distance only on what they return.
    """

    __tablename__ = "photo_hash_bands"
    __table_args__ = (Index("ix_photo_hash_bands_photo_id", "photo_id"),)

    band: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)


# --- counts the review pages read (issue 14, migration 0008_counts) ------------------------------------------


class FlagCount(Base):
    """Flags per status and code, kept by triggers on `flags`: the queue's summary without counting every flag.

    On PostgreSQL each backend adds to its own `slot` so that concurrent writers do not wait on one row; only
    the sum over the slots of a (status, code) means anything (a slot may hold a negative part).
    """

    __tablename__ = "flag_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class ModelSerial(Base):
    """An instrument with a sighting that is not dismissed, as the model page shows it; kept by triggers on
    `appearances`, so that the page reads one index range instead of aggregating every appearance of a model."""

    __tablename__ = "model_serials"
    __table_args__ = (
        # Covering: the model page reads the index alone (migration 0008_counts).
        Index(
            "ix_model_serials_model_first_seen",
            "model",
            "first_seen",
            "instrument_id",
            "serial",
            "pending",
            "listing_id",
        ),
        Index("ix_model_serials_model_serial", "model", "serial", "counted"),
    )

    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(32))
    first_seen: Mapped[datetime]  # the earliest seen_at of its sightings that are not dismissed
    listing_id: Mapped[int] = mapped_column(Integer)  # the lowest listing id among them, for a link
    pending: Mapped[int] = mapped_column(Integer)  # sightings awaiting review
    counted: Mapped[int] = mapped_column(Integer)  # sightings counted (what korgwatch stats estimates from)
