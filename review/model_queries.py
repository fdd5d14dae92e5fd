"""Reads for a model's page, from `model_serials` (one row per instrument, kept by triggers: migration 0008_counts).

At a million listings a model has tens of thousands of instruments: the page cannot aggregate every appearance
per request, nor draw every serial. It reads the summary rows through `ix_model_serials_model_first_seen`:
each instrument as a point while there are at most MODEL_POINTS_LIMIT, else counts per number block and month
(grouped in SQL); the serials themselves are a click away, a page at a time, keyset-paged by
(first_seen, instrument_id) on the same index. Which block a serial belongs to is decided by the rules, in SQL
written from them (`block_of`), so editing config/models.yaml never leaves a stored aggregate stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from db.models import ModelSerial, RegisterEntry
from db.queries import NO_BLOCK, BlockStats, estimate_from
from pipeline.rules import ModelRule, NumberBlock

MODEL_POINTS_LIMIT = 2000  # more instruments than this: counts per block and month instead of points
SERIALS_PAGE_SIZE = 100
OUTSIDE = "outside"  # the `block` parameter naming serials outside every block of the model


def _digits_only(column: Any, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        return column.op("NOT GLOB", is_comparison=True)("*[^0-9]*")
    return column.op("~", is_comparison=True)("^[0-9]+$")


def fits_block(block: NumberBlock, column: Any, dialect: str) -> ColumnElement[bool]:
    """`block.fits(serial)` as SQL: the length, the prefix, digits only, and the bounds.

    On SQLite a block is a range of equal-length digit strings ('140000'..'149999', narrowed by its bounds), which
    compare as their numbers do, so `ix_model_serials_model_serial` finds a block by range. PostgreSQL compares
    text by its collation, so there the prefix is matched and the bounds compared as numbers.
    """
    if dialect == "sqlite":
        low, high = _string_range(block)
        return and_(func.length(column) == block.length, column.between(low, high), _digits_only(column, dialect))
    conditions: list[ColumnElement[bool]] = [
        func.length(column) == block.length,
        func.substr(column, 1, len(block.prefix)) == block.prefix,
        _digits_only(column, dialect),
    ]
    if block.min is not None or block.max is not None:
        # Cast only what is digits (PostgreSQL would refuse to cast anything else): CASE decides first.
        value = case((_digits_only(column, dialect), cast(column, BigInteger)), else_=None)
        if block.min is not None:
            conditions.append(value >= block.min)
        if block.max is not None:
            conditions.append(value <= block.max)
    return and_(*conditions)


def _string_range(block: NumberBlock) -> tuple[str, str]:
    low, high = block.prefix.ljust(block.length, "0"), block.prefix.ljust(block.length, "9")
    if block.min is not None:
        low = max(low, str(block.min).zfill(block.length))
    if block.max is not None:
        high = min(high, str(block.max).zfill(block.length))
    return low, high


def block_of(rule: ModelRule, column: Any, dialect: str) -> ColumnElement[int]:
    """The index of the first block of `rule` a serial fits (as the chart places it), len(blocks) for none."""
    outside = len(rule.blocks)
    if not rule.blocks:
        return literal(0)
    if dialect == "sqlite":  # one digits test for all blocks, then a range per block: cheap per row
        whens: list[tuple[Any, int]] = [(column.op("GLOB", is_comparison=True)("*[^0-9]*"), outside)]
        for i, block in enumerate(rule.blocks):
            low, high = _string_range(block)
            whens.append((and_(func.length(column) == block.length, column.between(low, high)), i))
        return case(*whens, else_=outside)
    return case(*[(fits_block(block, column, dialect), i) for i, block in enumerate(rule.blocks)], else_=outside)


def month_of(column: Any, dialect: str) -> ColumnElement[str]:
    """'YYYY-MM' of a UTC timestamp (SQLite stores it as text in UTC; PostgreSQL as timestamptz)."""
    if dialect == "sqlite":
        return func.substr(column, 1, 7)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _utc(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ModelTotals:
    """How many instruments of the model were seen, and how many of them await review."""

    instruments: int
    flagged: int


def model_totals(session: Session, model: str) -> ModelTotals:
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(case((ModelSerial.pending > 0, 1), else_=0)), 0)).where(
            ModelSerial.model == model
        )
    ).one()
    return ModelTotals(int(row[0]), int(row[1]))


@dataclass(frozen=True, slots=True)
class ModelPoint:
    """One instrument of a model: when it was first seen, and whether a sighting of it awaits review."""

    serial: str
    first_seen: datetime
    flagged: bool
    listing_id: int  # one listing that shows it, for a link
    instrument_id: int = 0


def points_statement(model: str, limit: int) -> Select[str, datetime, int, int, int]:
    """The first `limit` instruments of `model`, oldest first (on its own, so a test can EXPLAIN it)."""
    return (
        select(
            ModelSerial.serial,
            ModelSerial.first_seen,
            ModelSerial.pending,
            ModelSerial.listing_id,
            ModelSerial.instrument_id,
        )
        .where(ModelSerial.model == model)
        .order_by(ModelSerial.first_seen, ModelSerial.instrument_id)
        .limit(limit)
    )


def model_points(session: Session, model: str, limit: int = MODEL_POINTS_LIMIT) -> list[ModelPoint]:
    """Instruments of `model` with their first sighting (dismissed sightings left out), oldest first."""
    return [
        ModelPoint(serial, _utc(first), pending > 0, int(listing_id), int(iid))
        for serial, first, pending, listing_id, iid in session.execute(points_statement(model, limit))
    ]


@dataclass(frozen=True, slots=True)
class Cell:
    """Instruments of one block (index into the rule's blocks; len(blocks) = outside) first seen in one month."""

    block: int
    month: str
    count: int
    flagged: int


def cells_statement(rule: ModelRule, dialect: str) -> Select[int, str, int, Any]:
    """Instruments of the model per block and month of first sighting, grouped in SQL over the model's range."""
    group = block_of(rule, ModelSerial.serial, dialect).label("block")
    month = month_of(ModelSerial.first_seen, dialect).label("month")
    return (
        select(group, month, func.count(), func.sum(case((ModelSerial.pending > 0, 1), else_=0)))
        .where(ModelSerial.model == rule.name)
        .group_by(group, month)
        .order_by(group, month)
    )


def model_cells(session: Session, rule: ModelRule) -> list[Cell]:
    return [
        Cell(int(block), str(month), int(n), int(flagged or 0))
        for block, month, n, flagged in session.execute(cells_statement(rule, _dialect(session)))
    ]


# --- the serials, a page at a time --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SerialFilter:
    """Which serials of a model a page lists: one block (index, or OUTSIDE) and/or the months from `month`
    ('YYYY-MM') to `until` (inclusive; the same month when empty)."""

    block: str = ""
    month: str = ""
    until: str = ""

    def __post_init__(self) -> None:
        if self.block and self.block != OUTSIDE and not self.block.isdigit():
            raise ValueError(f"block must be a block's number or {OUTSIDE!r}")
        for value in (self.month, self.until):
            if value:
                try:
                    datetime.strptime(value, "%Y-%m")
                except ValueError:
                    raise ValueError("month must be YYYY-MM") from None
        if self.until and not self.month:
            raise ValueError("until needs a month to start from")

    def block_index(self, rule: ModelRule) -> int | None:
        if not self.block:
            return None
        index = len(rule.blocks) if self.block == OUTSIDE else int(self.block)
        if index > len(rule.blocks):
            raise ValueError(f"{rule.name} has {len(rule.blocks)} blocks")
        return index

    def month_range(self) -> tuple[datetime, datetime] | None:
        if not self.month:
            return None
        start = datetime.strptime(self.month, "%Y-%m").replace(tzinfo=UTC)
        last = datetime.strptime(self.until or self.month, "%Y-%m").replace(tzinfo=UTC)
        end = last.replace(year=last.year + 1, month=1) if last.month == 12 else last.replace(month=last.month + 1)
        return start, end


def serials_statement(
    rule: ModelRule, dialect: str, where: SerialFilter, after: tuple[datetime, int] | None, limit: int
) -> Select[str, datetime, int, int, int]:
    """One page of the model's instruments, oldest first, keyset-paged on ix_model_serials_model_first_seen."""
    stmt = points_statement(rule.name, limit)
    block = where.block_index(rule)
    if block is not None:
        stmt = stmt.where(block_of(rule, ModelSerial.serial, dialect) == block)
    span = where.month_range()
    if span is not None:
        stmt = stmt.where(ModelSerial.first_seen >= span[0], ModelSerial.first_seen < span[1])
    if after is not None:
        first_seen, iid = after
        stmt = stmt.where(
            or_(
                ModelSerial.first_seen > first_seen,
                and_(ModelSerial.first_seen == first_seen, ModelSerial.instrument_id > iid),
            )
        )
    return stmt


def serials_page(
    session: Session,
    rule: ModelRule,
    where: SerialFilter,
    after: tuple[datetime, int] | None = None,
    limit: int = SERIALS_PAGE_SIZE,
) -> tuple[list[ModelPoint], tuple[datetime, int] | None]:
    """A page of the model's serials and where the next page starts (None on the last page)."""
    rows = session.execute(serials_statement(rule, _dialect(session), where, after, limit + 1)).all()
    points = [ModelPoint(s, _utc(first), pending > 0, int(lid), int(iid)) for s, first, pending, lid, iid in rows]
    if len(points) > limit:
        last = points[limit - 1]
        return points[:limit], (last.first_seen, last.instrument_id)
    return points, None


# --- the production estimate --------------------------------------------------------------------------


def block_stats(session: Session, rule: ModelRule) -> list[BlockStats]:
    """`db.queries.stats` for one model (the same figures), from the summary rows instead of every appearance:
    per block, the distinct serials counted (sightings counted, plus the register) and the lowest and highest,
    each block read as a range of `ix_model_serials_model_serial`."""
    dialect = _dialect(session)
    serial = ModelSerial.serial
    counted = and_(ModelSerial.model == rule.name, ModelSerial.counted > 0)
    register = set(session.scalars(select(RegisterEntry.serial).where(RegisterEntry.model == rule.name)))
    already = set(session.scalars(select(serial).where(counted, serial.in_(register)))) if register else set()
    extra = register - already  # register serials no counted sighting shows: known all the same

    def figures(where: ColumnElement[bool], extras: list[str]) -> tuple[int, str | None, str | None]:
        n, low, high = session.execute(
            select(func.count(serial.distinct()), func.min(serial), func.max(serial)).where(counted, where)
        ).one()
        values = [v for v in (low, high, *extras) if v is not None]
        return int(n) + len(extras), min(values, default=None), max(values, default=None)

    result: list[BlockStats] = []
    fits = [fits_block(block, serial, dialect) for block in rule.blocks]
    for block, where in zip(rule.blocks, fits, strict=True):
        units, lowest, highest = figures(where, sorted(r for r in extra if block.fits(r)))
        if units and lowest is not None and highest is not None:
            estimate = estimate_from(int(highest) - block.lowest + 1, units)
            result.append(BlockStats(rule.name, block.pattern, units, lowest, highest, estimate))
    outside = and_(*(~f for f in fits)) if fits else literal(True)
    units, lowest, highest = figures(outside, sorted(r for r in extra if not rule.fitting_blocks(r)))
    if units and lowest is not None and highest is not None:
        result.append(BlockStats(rule.name, NO_BLOCK, units, lowest, highest, None))
    return result
