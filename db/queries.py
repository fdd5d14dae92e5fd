"""Read-side queries for the commands and the review page: plain rows out, a Session in, no commits.

Every look-up here is served by an index declared in `db/models.py` (serial → instruments.serial;
instrument → appearances(instrument_id, seen_at); open flags → flags(status, created_at)).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from db.models import Appearance, Flag, Instrument, Listing, RegisterEntry, Source

# The statements of the read commands name the tables' columns, not the mapped classes: a statement that names a
# mapped class makes SQLAlchemy configure every mapper of the schema first (a tenth of a read command's
# start-up), and these rows are plain tuples anyway.
APPEARANCES = Appearance.__table__
FLAGS = Flag.__table__
INSTRUMENTS = Instrument.__table__
LISTINGS = Listing.__table__
REGISTER_ENTRIES = RegisterEntry.__table__
SOURCES = Source.__table__

if TYPE_CHECKING:
    from pipeline.rules import Rules


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewSerial:
    """A serial korgwatch found that the register does not have yet."""

    model: str
    serial: str
    first_seen: datetime
    url: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        # Field by field: asdict deep-copies every datetime (5 s for an export of 60,000 serials).
        return {
            "model": self.model,
            "serial": self.serial,
            "first_seen": self.first_seen.date().isoformat(),
            "url": self.url,
            "source": self.source,
        }


def new_serials_statement(since: date, until: date | None = None) -> Any:
    """The export's one query: each instrument's first counted appearance (with its listing) when it falls in
    [since, until] and the serial is neither registered nor awaiting review.

    Instruments with a pending appearance are found by one pass over the appearances (NOT IN: a set built
    once, not a look-up per instrument); for each remaining one the first counted appearance is looked up
    through the (instrument_id, seen_at) index, ties broken by id, and comes with its listing's URL and
    source in the same statement, whatever the number of serials, without sorting every appearance.
    """
    first = (
        select(APPEARANCES.c.id)
        .where(APPEARANCES.c.instrument_id == INSTRUMENTS.c.id, APPEARANCES.c.status == "counted")
        .order_by(APPEARANCES.c.seen_at, APPEARANCES.c.id)
        .limit(1)
        .correlate(INSTRUMENTS)
        .scalar_subquery()
    )
    pending = select(APPEARANCES.c.instrument_id).where(APPEARANCES.c.status == "pending")
    registered = exists().where(
        REGISTER_ENTRIES.c.model == INSTRUMENTS.c.model, REGISTER_ENTRIES.c.serial == INSTRUMENTS.c.serial
    )
    firsts = (
        select(INSTRUMENTS.c.model, INSTRUMENTS.c.serial, first.label("appearance_id"))
        .where(INSTRUMENTS.c.id.not_in(pending), ~registered)
        .subquery()
    )
    stmt = (
        select(firsts.c.model, firsts.c.serial, APPEARANCES.c.seen_at, LISTINGS.c.url, SOURCES.c.name)
        .select_from(firsts)
        .join(APPEARANCES, APPEARANCES.c.id == firsts.c.appearance_id)
        .join(LISTINGS, LISTINGS.c.id == APPEARANCES.c.listing_id)
        .join(SOURCES, SOURCES.c.id == LISTINGS.c.source_id)
        .where(APPEARANCES.c.seen_at >= _start(since))
    )
    if until is not None:
        stmt = stmt.where(APPEARANCES.c.seen_at < _start(until + timedelta(days=1)))
    return stmt


def new_serials(session: Session, since: date, until: date | None = None) -> list[NewSerial]:
    """Serials first sighted in [since, until] (inclusive dates), counted, not in the register, none pending.

    "First sighted" is the earliest counted appearance of the instrument; a serial seen before `since` is not
    new even if it reappears later; a second unit of a serial links to its own first sighting. One query,
    whatever the number of serials. Sorted by model, then serial.
    """
    result = [
        NewSerial(model, serial, _aware(first_seen), url, source)
        for model, serial, first_seen, url, source in session.execute(new_serials_statement(since, until))
    ]
    result.sort(key=lambda r: (r.model.casefold(), len(r.serial), r.serial))
    return result


def _aware(value: datetime | str) -> datetime:
    """A timestamp read through a subquery as an aware UTC datetime (SQLite may hand back its text)."""
    seen = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return seen.replace(tzinfo=UTC) if seen.tzinfo is None else seen


def new_serials_markdown(rows: list[NewSerial], rules: Rules | None = None) -> str:
    """The export as the register page lists serials: one heading per model, one bullet per serial."""
    order = {name: i for i, name in enumerate(rules.models)} if rules else {}
    grouped: dict[str, list[NewSerial]] = defaultdict(list)
    for row in rows:
        grouped[row.model].append(row)
    lines: list[str] = []
    for model in sorted(grouped, key=lambda m: (order.get(m, len(order)), m.casefold())):
        lines.append(f"### {model}")
        lines.append("")
        for row in grouped[model]:
            lines.append(f"- [{row.serial}]({row.url}) — first seen {row.first_seen.date().isoformat()} ({row.source})")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n" if lines else ""


@dataclass(frozen=True, slots=True)
class QueueItem:
    flag_id: int
    created_at: datetime
    code: str
    message: str
    suggestions: tuple[str, ...]
    model: str | None
    serial: str | None
    appearance_id: int | None
    source: str
    title: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        # Field by field (asdict deep-copies every datetime, most of `queue --all`'s time): the same keys.
        data = {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]
        data["created_at"] = self.created_at.isoformat()
        data["suggestions"] = list(self.suggestions)
        return data


QUEUE_CHUNK = 1000  # rows fetched at a time while the queue streams: memory stays flat at any queue length


def review_queue_statement(
    *, code: str | None = None, model: str | None = None, source: str | None = None, after: int | None = None
) -> Any:
    """Open flags, newest first (created_at, then id), as one statement; `after` is keyset paging.

    `after` is a flag id: the rows that come after it in this order (the next page after a page that ended
    with that flag), found through the (status, created_at) index instead of counting past an OFFSET.
    `model` is a canonical model name and matches the model the flag is about (its instrument's), never the
    other models a serial happens to fit (a flag's `models` detail): those are suggestions, not its model.
    """
    stmt = (
        select(
            FLAGS.c.id,
            FLAGS.c.created_at,
            FLAGS.c.code,
            FLAGS.c.details,
            FLAGS.c.appearance_id,
            INSTRUMENTS.c.model,
            INSTRUMENTS.c.serial,
            SOURCES.c.name,
            LISTINGS.c.title,
            LISTINGS.c.url,
        )
        .join(LISTINGS, LISTINGS.c.id == FLAGS.c.listing_id)
        .join(SOURCES, SOURCES.c.id == LISTINGS.c.source_id)
        .outerjoin(APPEARANCES, APPEARANCES.c.id == FLAGS.c.appearance_id)
        .outerjoin(INSTRUMENTS, INSTRUMENTS.c.id == APPEARANCES.c.instrument_id)
        .where(FLAGS.c.status == "open")
        .order_by(FLAGS.c.created_at.desc(), FLAGS.c.id.desc())
    )
    if after is not None:
        mark = select(FLAGS.c.created_at).where(FLAGS.c.id == after).scalar_subquery()
        stmt = stmt.where(FLAGS.c.created_at <= mark, or_(FLAGS.c.created_at < mark, FLAGS.c.id < after))
    if code:
        stmt = stmt.where(FLAGS.c.code == code)
    if source:
        stmt = stmt.where(SOURCES.c.name == source)
    if model:
        stmt = stmt.where(INSTRUMENTS.c.model == model)
    return stmt


def flag_exists(session: Session, flag_id: int) -> bool:
    """Whether a flag of this id exists (open or decided): where `--after` may start."""
    return session.execute(select(FLAGS.c.id).where(FLAGS.c.id == flag_id)).first() is not None


def iter_review_queue(
    session: Session,
    *,
    code: str | None = None,
    model: str | None = None,
    source: str | None = None,
    after: int | None = None,
    limit: int | None = None,
    chunk: int = QUEUE_CHUNK,
) -> Iterator[list[QueueItem]]:
    """The review queue in lists of at most `chunk` items, read from one query as they are wanted.

    Memory holds one chunk, not the queue (rows are streamed: SQLite steps its cursor, PostgreSQL uses a
    server-side cursor); `limit` caps the rows read, in the query itself.
    """
    stmt = review_queue_statement(code=code, model=model, source=source, after=after)
    if limit is not None:
        stmt = stmt.limit(limit)
    result = session.execute(stmt.execution_options(yield_per=chunk))
    for rows in result.partitions():
        yield [_queue_item(row) for row in rows]


def _queue_item(row: Any) -> QueueItem:
    flag_id, created_at, code, details, appearance_id, model, serial, source, title, url = row
    return QueueItem(
        flag_id,
        created_at,
        code,
        str(details.get("message", "")),
        tuple(details.get("suggestions") or ()),
        model,
        serial,
        appearance_id,
        source,
        title,
        url,
    )


def review_queue(
    session: Session, *, code: str | None = None, model: str | None = None, source: str | None = None
) -> list[QueueItem]:
    """Every open flag, newest first, with what the reviewer needs to decide (see `review_queue_statement`)."""
    return [item for part in iter_review_queue(session, code=code, model=model, source=source) for item in part]


@dataclass(frozen=True, slots=True)
class HistoryItem:
    appearance_id: int
    seen_at: datetime
    model: str
    serial: str
    kind: str
    status: str
    source: str
    seller: str | None
    title: str
    url: str
    price: str | None
    currency: str | None
    unit: int = 1  # 2, 3... for other physical units a reviewer found with the same serial

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seen_at"] = self.seen_at.isoformat()
        return data


def history_statement(serial: str, model: str | None = None) -> Any:
    """The history query on its own, so a test can EXPLAIN it."""
    stmt = (
        select(
            APPEARANCES.c.id,
            APPEARANCES.c.seen_at,
            INSTRUMENTS.c.model,
            INSTRUMENTS.c.serial,
            APPEARANCES.c.kind,
            APPEARANCES.c.status,
            SOURCES.c.name,
            LISTINGS.c.seller,
            LISTINGS.c.title,
            LISTINGS.c.url,
            LISTINGS.c.price,
            LISTINGS.c.currency,
            INSTRUMENTS.c.unit,
        )
        .select_from(INSTRUMENTS)
        .join(APPEARANCES, APPEARANCES.c.instrument_id == INSTRUMENTS.c.id)
        .join(LISTINGS, LISTINGS.c.id == APPEARANCES.c.listing_id)
        .join(SOURCES, SOURCES.c.id == LISTINGS.c.source_id)
        .where(INSTRUMENTS.c.serial == serial)
        .order_by(APPEARANCES.c.seen_at, APPEARANCES.c.id)
    )
    if model:
        stmt = stmt.where(INSTRUMENTS.c.model == model)
    return stmt


def history(session: Session, serial: str, model: str | None = None) -> list[HistoryItem]:
    """Every appearance of a serial, oldest first (several models may share a serial: pass `model`); `unit`
    tells apart physical units a reviewer found sharing one model+serial."""
    items = []
    for row in session.execute(history_statement(serial.strip().upper(), model)):
        items.append(
            HistoryItem(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                None if row[10] is None else f"{row[10]:.2f}",
                row[11],
                row[12],
            )
        )
    return items


MIN_SERIALS_FOR_ESTIMATE = 3  # below this, m + m/k − 1 is mostly noise: one sighting "estimates" twice itself
ESTIMATE_CONFIDENCE = 0.90
TOO_FEW_SIGHTINGS = "too few sightings"


@dataclass(frozen=True, slots=True)
class Estimate:
    """Units made in one block, from the offsets of the distinct serials seen (the German tank problem).

    `value` is the minimum-variance unbiased estimate m + m/k − 1; [low, high] is the 90 % confidence
    interval m .. m·0.1^(−1/k) (m the largest 1-based offset, k the distinct serials); `serials` is k.
    """

    value: int
    low: int
    high: int
    serials: int

    def describe(self) -> str:
        return (
            f"~{self.value} (90 % interval {self.low}–{self.high}, from {self.serials} serials)"
        )


def german_tank(offsets: list[int]) -> int | None:
    """m + m/k − 1 for 1-based offsets (distinct); None without data."""
    if not offsets:
        return None
    m, k = max(offsets), len(set(offsets))
    return round(m + m / k - 1)


def production_estimate(offsets: list[int]) -> Estimate | None:
    """The estimate with its 90 % interval, or None below MIN_SERIALS_FOR_ESTIMATE distinct serials."""
    distinct = set(offsets)
    return estimate_from(max(distinct) if distinct else 0, len(distinct))


def estimate_from(m: int, k: int) -> Estimate | None:
    """The estimate from the largest 1-based offset `m` and the number `k` of distinct serials (all it needs)."""
    if k < MIN_SERIALS_FOR_ESTIMATE:
        return None
    high = math.ceil(m * (1 - ESTIMATE_CONFIDENCE) ** (-1 / k))
    return Estimate(value=round(m + m / k - 1), low=m, high=high, serials=k)


@dataclass(frozen=True, slots=True)
class BlockStats:
    """One number block of one model: how many units we know and what that suggests about production.

    `estimate` (see `Estimate`) is None when the block has fewer than three distinct serials: an estimate of
    units made, not a count, and only worth printing when it rests on a few sightings.
    """

    model: str
    block: str
    units: int
    lowest: str
    highest: str
    estimate: Estimate | None

    def estimate_text(self) -> str:
        if self.block == NO_BLOCK:
            return "outside every block: no estimate"
        return self.estimate.describe() if self.estimate else f"{TOO_FEW_SIGHTINGS} ({self.units})"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["estimate"] = self.estimate.value if self.estimate else None
        data["estimate_low"] = self.estimate.low if self.estimate else None
        data["estimate_high"] = self.estimate.high if self.estimate else None
        data["estimate_serials"] = self.estimate.serials if self.estimate else self.units
        data["estimate_text"] = self.estimate_text()
        return data


NO_BLOCK = "(no block)"


def known_serials(session: Session) -> dict[str, set[str]]:
    """Serials known per model: counted appearances plus the register."""
    known: dict[str, set[str]] = defaultdict(set)
    counted = (
        select(Instrument.model, Instrument.serial)
        .join(Appearance, and_(Appearance.instrument_id == Instrument.id, Appearance.status == "counted"))
        .distinct()
    )
    for model, serial in session.execute(counted):
        known[model].add(serial)
    for model, serial in session.execute(select(RegisterEntry.model, RegisterEntry.serial).distinct()):
        known[model].add(serial)
    return known


def stats(session: Session, rules: Rules, model: str | None = None) -> list[BlockStats]:
    """Per model (or only `model`) and block: units seen, lowest/highest serial, a production estimate."""
    result: list[BlockStats] = []
    known = known_serials(session)
    if model is not None:
        known = {model: known[model]} if known.get(model) else {}
    order = {name: i for i, name in enumerate(rules.models)}
    for model in sorted(known, key=lambda m: (order.get(m, len(order)), m)):
        serials = known[model]
        rule = rules.models.get(model)
        unplaced = set(serials)
        for block in rule.blocks if rule else ():
            inside = sorted(s for s in serials if block.fits(s))
            unplaced -= set(inside)
            if not inside:
                continue
            offsets = [int(s) - block.lowest + 1 for s in inside]
            estimate = production_estimate(offsets)
            result.append(BlockStats(model, block.pattern, len(inside), inside[0], inside[-1], estimate))
        if unplaced:
            others = sorted(unplaced)
            result.append(BlockStats(model, NO_BLOCK, len(others), others[0], others[-1], None))
    return result
