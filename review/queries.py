"""Read-side queries the review page needs and `db/queries.py` lacks: a keyset-paged queue with its counts, and
one listing with everything a reviewer weighs (a model's page: `review/model_queries.py`). Functions take a
Session and never commit.

The queue is paged by (created_at, id) rather than OFFSET, so page 500 costs what page 1 costs: both walk
`ix_flags_status_created_at` (SQLite keeps the rowid in every index, so the id tie-break is free there too).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    FLAG_STATUSES,
    Appearance,
    Flag,
    FlagCount,
    Instrument,
    Listing,
    ListingRevision,
    ReviewLog,
    Source,
)
from db.queries import HistoryItem, history
from pipeline.rules import Rules

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


# --- the queue ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the reviewer narrowed the queue to; empty strings mean "any"."""

    status: str = "open"
    code: str = ""
    model: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.status not in FLAG_STATUSES:
            raise ValueError(f"status must be one of {', '.join(FLAG_STATUSES)}")

    def as_params(self) -> dict[str, str]:
        """The non-default filters, for links that keep them."""
        params = {"code": self.code, "model": self.model, "source": self.source}
        if self.status != "open":
            params["status"] = self.status
        return {k: v for k, v in params.items() if v}


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One flag as the queue shows it: the listing's title with the serial's span, and the flag's reason."""

    flag_id: int
    created_at: datetime
    code: str
    status: str
    message: str
    listing_id: int
    title: str
    url: str
    source: str
    posted_at: datetime | None
    model: str | None
    serial: str | None
    serial_field: str | None
    serial_start: int | None
    serial_end: int | None

    @property
    def title_span(self) -> tuple[int, int] | None:
        """The stored span of the serial when it stands in the title (the only field the queue shows)."""
        if self.serial_field == "title" and self.serial_start is not None and self.serial_end is not None:
            return (self.serial_start, self.serial_end)
        return None


def encode_cursor(created_at: datetime, flag_id: int) -> str:
    """An opaque "after this row" token for the next page's link."""
    raw = f"{created_at.astimezone(UTC).isoformat()}|{flag_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, int]:
    """The (created_at, id) a cursor names; ValueError for anything that is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, _, ident = raw.partition("|")
        created_at = datetime.fromisoformat(when)
        flag_id = int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a queue cursor") from exc
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return created_at, flag_id


def queue_statement(filters: QueueFilters, after: tuple[datetime, int] | None, limit: int) -> Select[Any]:
    """The queue query on its own, so a test can EXPLAIN it: newest first, keyset-paged."""
    stmt = (
        select(
            Flag.id,
            Flag.created_at,
            Flag.code,
            Flag.status,
            Flag.details,
            Listing.id,
            Listing.title,
            Listing.url,
            Source.name,
            Listing.posted_at,
            Instrument.model,
            Instrument.serial,
            Appearance.serial_field,
            Appearance.serial_start,
            Appearance.serial_end,
        )
        .select_from(Flag)
        .join(Listing, Listing.id == Flag.listing_id)
        .join(Source, Source.id == Listing.source_id)
        .outerjoin(Appearance, Appearance.id == Flag.appearance_id)
        .outerjoin(Instrument, Instrument.id == Appearance.instrument_id)
        .where(Flag.status == filters.status)
        .order_by(Flag.created_at.desc(), Flag.id.desc())
        .limit(limit)
    )
    if filters.code:
        stmt = stmt.where(Flag.code == filters.code)
    if filters.source:
        stmt = stmt.where(Source.name == filters.source)
    if filters.model:
        stmt = stmt.where(Instrument.model == filters.model)
    if after is not None:
        created_at, flag_id = after
        stmt = stmt.where(or_(Flag.created_at < created_at, and_(Flag.created_at == created_at, Flag.id < flag_id)))
    return stmt


def queue_page(
    session: Session, filters: QueueFilters, after: tuple[datetime, int] | None = None, limit: int = PAGE_SIZE
) -> tuple[list[QueueRow], str | None]:
    """One page of the queue and the cursor of the next page (None on the last page)."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    rows: list[QueueRow] = []
    for r in session.execute(queue_statement(filters, after, limit + 1)):
        details = r[4] or {}
        models = details.get("models") or []
        rows.append(
            QueueRow(
                flag_id=r[0],
                created_at=r[1],
                code=r[2],
                status=r[3],
                message=str(details.get("message", "")),
                listing_id=r[5],
                title=r[6],
                url=r[7],
                source=r[8],
                posted_at=r[9],
                model=r[10] or (models[0] if models else None),
                serial=r[11],
                serial_field=r[12],
                serial_start=r[13],
                serial_end=r[14],
            )
        )
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], encode_cursor(last.created_at, last.flag_id)
    return rows, None


def code_counts(session: Session, status: str = "open") -> list[tuple[str, int]]:
    """How many flags of each code have `status`, most frequent first (the queue's summary line).

    Read from `flag_counts` (kept by triggers, migration 0008_counts): a few rows, however many flags there are.
    """
    total = func.sum(FlagCount.n)
    rows = session.execute(
        select(FlagCount.code, total).where(FlagCount.status == status).group_by(FlagCount.code).having(total > 0)
    ).all()
    return sorted(((code, int(n)) for code, n in rows), key=lambda r: (-r[1], r[0]))


def source_names(session: Session) -> list[str]:
    """Every source, for the filter's choices (a handful of rows)."""
    return list(session.scalars(select(Source.name).order_by(Source.name)))


def neighbour_flag(session: Session, flag_id: int, status: str = "open") -> int | None:
    """The next older open flag after `flag_id`, so a decision on the listing page can move on to it."""
    flag = session.get(Flag, flag_id)
    if flag is None:
        return None
    return session.scalar(
        select(Flag.id)
        .where(
            Flag.status == status,
            or_(Flag.created_at < flag.created_at, and_(Flag.created_at == flag.created_at, Flag.id < flag.id)),
        )
        .order_by(Flag.created_at.desc(), Flag.id.desc())
        .limit(1)
    )


# --- one listing --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppearanceView:
    """An appearance on the listing, with its serial's fit in words and every other sighting of the serial."""

    appearance: Appearance
    model: str
    serial: str
    fit_sentence: str
    blocks: list[tuple[str, bool]]
    timeline: list[HistoryItem]
    unit: int = 1

    @property
    def timeline_units(self) -> list[tuple[str | None, list[HistoryItem]]]:
        """The timeline cut per physical unit, each with a heading; one unlabelled part while nobody split it."""
        if all(item.unit == 1 for item in self.timeline):
            return [(None, self.timeline)]
        parts: dict[tuple[str, int], list[HistoryItem]] = {}
        for item in self.timeline:
            parts.setdefault((item.model, item.unit), []).append(item)
        return [(f"{model} unit {unit}", items) for (model, unit), items in sorted(parts.items())]


@dataclass
class ListingView:
    """Everything the listing page shows, loaded in one place."""

    listing: Listing
    source: str
    flags: list[Flag]
    appearances: list[AppearanceView]
    revisions: list[ListingRevision]
    log: list[ReviewLog] = field(default_factory=list)


def fit_sentence(serial: str, model: str, rules: Rules) -> str:
    """The check in the reviewer's words, with the blocks described as the queue's flag message describes
    them: "730144 fits Poly-61 (7nnnnn), not MS-10 (13nnnn from 130000)"."""
    if model not in rules.models:
        return f"{serial}: {model} is not a model the rules know"
    rule = rules.model(model)
    own = f"{model} ({', '.join(b.describe() for b in rule.blocks)})"
    fitting = rule.fitting_blocks(serial)
    if fitting:
        return f"{serial} fits {model} ({', '.join(b.describe() for b in fitting)})"
    elsewhere: dict[str, list[str]] = {}
    for other, block in rules.models_fitting(serial):
        if other.name != model:
            elsewhere.setdefault(other.name, []).append(block.describe())
    if not elsewhere:
        return f"{serial} fits no block of {own} nor of any other model"
    where = "; ".join(f"{name} ({', '.join(patterns)})" for name, patterns in elsewhere.items())
    return f"{serial} fits {where}, not {own}"


def listing_view(session: Session, listing_id: int, rules: Rules) -> ListingView | None:
    """The listing, its flags (open first), appearances with timelines, revisions and the decisions on it."""
    listing = session.get(Listing, listing_id)
    if listing is None:
        return None
    flags = list(
        session.scalars(
            select(Flag)
            .where(Flag.listing_id == listing_id)
            .order_by((Flag.status == "open").desc(), Flag.created_at.desc(), Flag.id.desc())
        )
    )
    appearances: list[AppearanceView] = []
    for app in session.scalars(select(Appearance).where(Appearance.listing_id == listing_id).order_by(Appearance.id)):
        model, serial = app.instrument.model, app.instrument.serial
        rule = rules.models.get(model)
        blocks = [(b.describe(), b.fits(serial)) for b in rule.blocks] if rule else []
        appearances.append(
            AppearanceView(
                app,
                model,
                serial,
                fit_sentence(serial, model, rules),
                blocks,
                history(session, serial),
                app.instrument.unit,
            )
        )
    revisions = list(
        session.scalars(
            select(ListingRevision)
            .where(ListingRevision.listing_id == listing_id)
            .order_by(ListingRevision.replaced_at.desc())
        )
    )
    flag_ids = [f.id for f in flags]
    app_ids = [a.appearance.id for a in appearances]
    log: list[ReviewLog] = []
    if flag_ids or app_ids:
        log = list(
            session.scalars(
                select(ReviewLog)
                .where(or_(ReviewLog.flag_id.in_(flag_ids), ReviewLog.appearance_id.in_(app_ids)))
                .order_by(ReviewLog.at.desc(), ReviewLog.id.desc())
            )
        )
    return ListingView(listing, listing.source.name, flags, appearances, revisions, log)
