"""Bulk writes: INSERT ... ON CONFLICT on both backends (unique keys, not Python checks, settle races between
writers) and a lean executemany for the big inserts of an ingest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Numeric, Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import UTCDateTime


def _sqlite_datetime(value: datetime | None) -> str | None:
    # The same text SQLAlchemy's SQLite DATETIME writes, so comparisons with bound datetimes agree.
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _memo(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Per-statement memo for datetimes: a batch stamps the same `now` on many rows."""
    cache: dict[Any, Any] = {}

    def converted(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            cache[value] = result = convert(value)
            return result

    return converted


def _sqlite_converter(column: Any) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return _sqlite_datetime
    if isinstance(kind, JSON):
        return lambda v: None if v is None else json.dumps(v)
    if isinstance(kind, Numeric):
        return lambda v: None if v is None else str(v)
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else int(v)
    return None


def bulk_insert(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows (all with the same keys) as one executemany.

    On SQLite the values are converted here and handed to the driver directly: SQLAlchemy's per-row
    parameter processing would otherwise cost more than SQLite's own work. PostgreSQL takes the ordinary Core
    executemany (psycopg batches it).
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    special = [
        (i, _memo(f) if f is _sqlite_datetime else f)
        for i, n in enumerate(names)
        if (f := _sqlite_converter(table.c[n])) is not None
    ]
    getter = itemgetter(*names)
    params: list[Any] = []
    for row in rows:
        values = getter(row)
        if special:
            values = list(values) if len(names) > 1 else [values]
            for i, convert in special:
                values[i] = convert(values[i])
            values = tuple(values)
        elif len(names) == 1:
            values = (values,)
        params.append(values)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    session.connection().exec_driver_sql(sql, params)


def bulk_update(session: Session, table: Any, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE many rows by primary key as one executemany (all rows with the same keys)."""
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    if session.get_bind().dialect.name != "sqlite":
        stmt = update(table).where(table.c[key] == bindparam(f"_{key}")).values({n: bindparam(f"_{n}") for n in names})
        session.connection().execute(stmt, [{f"_{k}": v for k, v in row.items()} for row in rows])
        return
    converters = [_sqlite_converter(table.c[n]) for n in names]
    params = [
        (*(row[n] if f is None else f(row[n]) for n, f in zip(names, converters, strict=True)), row[key])
        for row in rows
    ]
    sql = f"UPDATE {table.name} SET {', '.join(f'{n} = ?' for n in names)} WHERE {key} = ?"
    session.connection().exec_driver_sql(sql, params)


def _dialect_insert(session: Session, table: Table) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(session: Session, table: Any, key: Sequence[str]) -> Any:
    """An INSERT that skips rows whose `key` columns already exist (someone else got there first)."""
    return _dialect_insert(session, table).on_conflict_do_nothing(index_elements=list(key))


def insert_or_update(session: Session, table: Any, key: Sequence[str], update: Sequence[str]) -> Any:
    """An INSERT that, on a clash of `key`, overwrites the `update` columns with the new values."""
    stmt = _dialect_insert(session, table)
    return stmt.on_conflict_do_update(
        index_elements=list(key), set_={name: getattr(stmt.excluded, name) for name in update}
    )
