"""Bulk writes and look-ups: INSERT ... ON CONFLICT on both backends (unique keys, not Python checks, settle races
between writers), the leanest bulk insert each backend has for the big inserts of an ingest (a driver-level
executemany on SQLite, COPY on PostgreSQL), and IN lists bound as one parameter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Numeric,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.jsontext import dumps_or_null
from db.models import ExactDecimal, UTCDateTime

# Keys per look-up statement: `one_of` binds them all as one parameter, except on an SQLite too old for
# json_each, where each is a parameter of its own (and SQLite before 3.32 allows 999 of them).
KEYS_PER_LOOKUP = 10_000 if sqlite3.sqlite_version_info >= (3, 38) else 500


def _sqlite_datetime(value: datetime | None) -> str | None:
    # The same text SQLAlchemy's SQLite DATETIME writes, so comparisons with bound datetimes agree.
    if value is None:
        return None
    if value.tzinfo is UTC:  # what parse_datetime and utcnow() give: cut the "+00:00" off
        return value.isoformat(" ", "microseconds")[:-6]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _sqlite_converter(column: Any) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return _sqlite_datetime
    if isinstance(kind, JSON):
        return dumps_or_null
    if isinstance(kind, ExactDecimal):
        return lambda v: None if v is None else f"{v:.2f}"
    if isinstance(kind, Numeric):
        return lambda v: None if v is None else str(v)
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else int(v)
    return None


def bulk_insert(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows (all with the same keys) at the backend's bulk speed.

    On SQLite the values are converted here, a column at a time, and handed to the driver's executemany
    directly: SQLAlchemy's per-row parameter processing would otherwise cost more than SQLite's own work.
    On PostgreSQL the rows go by COPY (`copy_rows`): one statement of fixed text whatever the batch, where a
    multi-row INSERT would be a new statement for psycopg to parse every time.
    """
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        copy_rows(session, table, rows)
        return
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    columns: list[Iterable[Any]] = []
    for name in names:
        values = list(map(itemgetter(name), rows))
        convert = _sqlite_converter(table.c[name])
        if convert is _sqlite_datetime:
            # Each distinct time converted once: a batch stamps the same `now` on every row.
            converted = {value: _sqlite_datetime(value) for value in set(values)}
            columns.append(list(map(converted.__getitem__, values)))
        else:
            columns.append(values if convert is None else list(map(convert, values)))
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    session.connection().exec_driver_sql(sql, list(zip(*columns, strict=True)))


def bulk_insert_ids(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> list[int] | None:
    """`bulk_insert`, then the new rows' `id`s in row order, without reading the rows back; None if unknown.

    PostgreSQL: the ids are drawn from the table's own sequence first (one statement), in ascending order as
    an INSERT would take them, and the rows, ids included, go by COPY. On SQLite the insert holds the write
    lock until commit and an INTEGER PRIMARY KEY without AUTOINCREMENT takes max(id) + 1 per row, so when
    max(id) grew by exactly len(rows) the ids are the next len(rows) numbers in order; otherwise (ids near
    2**63, where SQLite picks them at random) the caller looks them up by key.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = next_ids(session, table, len(rows))
        copy_rows(session, table, [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
        return ids
    if session.get_bind().dialect.name != "sqlite":
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(stmt, list(rows)).scalars())
    connection = session.connection()
    top = f"SELECT coalesce(max(id), 0) FROM {table.name}"
    before = connection.exec_driver_sql(top).scalar_one()
    bulk_insert(session, table, rows)
    after = connection.exec_driver_sql(top).scalar_one()
    if after - before != len(rows):
        return None
    return list(range(before + 1, after + 1))


def next_ids(session: Session, table: Any, count: int) -> list[int]:
    """`count` ids from the sequence behind `table.id` (PostgreSQL), ascending: taken, so no one else gets them."""
    return sorted(
        session.connection()
        .exec_driver_sql(
            "SELECT nextval(q.s::regclass) FROM (SELECT pg_get_serial_sequence(%(table)s, 'id') AS s) AS q"
            " CROSS JOIN generate_series(1, %(count)s)",
            {"table": table.name, "count": count},
        )
        .scalars()
    )


def _copy_converter(column: Any) -> Callable[[Any], Any] | None:
    # COPY sends text: JSON columns need their JSON text, and naive times are UTC (as UTCDateTime binds them).
    kind = column.type
    if isinstance(kind, JSON):
        return dumps_or_null
    if isinstance(kind, UTCDateTime):
        return lambda v: v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v
    return None


def copy_rows(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """COPY rows (all with the same keys) into `table` (PostgreSQL), inside the session's transaction.

    Constraints, foreign keys and triggers hold as for INSERT. The driver's errors come back as SQLAlchemy's
    (IntegrityError, OperationalError …), so callers tell a refused row from a lost server as they do for any
    other statement.
    """
    names = list(rows[0])
    converters = [_copy_converter(table.c[name]) for name in names]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    connection = session.connection()
    raw = connection.connection.driver_connection
    assert raw is not None
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[n] if f is None else f(row[n]) for n, f in zip(names, converters, strict=True)])
    except raw.Error as exc:  # psycopg.Error: not wrapped, since SQLAlchemy did not run the statement
        lost = connection.dialect.is_disconnect(exc, raw, None)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, raw.Error, connection_invalidated=lost, dialect=connection.dialect
        ) from exc


def one_of(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values` with the values bound as ONE parameter: a JSON array on SQLite, an array on PostgreSQL.

    SQLAlchemy's expanding IN binds and processes every value on its own, which for the thousands of keys of an
    ingest batch costs more than the indexed look-up itself; one parameter also needs no chunking under the
    drivers' limits on bound parameters. Both forms still search the column's index.
    """
    values = list(values)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # An unsized element type: a cast to VARCHAR(n)[] would silently truncate longer values.
        element = String() if isinstance(column.type, String) else column.type
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(element)))
    if dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 38):  # json_each is built in from 3.38
        listed = func.json_each(bindparam(None, json.dumps(values))).table_valued("value")
        return column.in_(select(listed.c.value))
    return column.in_(values)


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


def insert_ignore_returning(
    session: Session, table: Any, key: Sequence[str], rows: Sequence[dict[str, Any]], returning: Sequence[Any]
) -> list[Any]:
    """`insert_ignore` of many rows, returning `returning` for the rows inserted (not those someone else had).

    On PostgreSQL the rows are bound as one array per column and unnested: one statement of the same text for
    any number of rows (which psycopg parses once), not a multi-row VALUES list that changes with each batch.
    """
    if not rows:
        return []
    stmt = insert_ignore(session, table, key).returning(*returning)
    if session.get_bind().dialect.name != "postgresql":
        return list(session.execute(stmt, list(rows)))
    names = list(rows[0])
    arrays = [
        bindparam(f"_{name}", [row[name] for row in rows], type_=postgresql.ARRAY(_array_element(table.c[name])))
        for name in names
    ]
    unnested = func.unnest(*arrays).table_valued(*names).render_derived()
    source = select(*(unnested.c[name] for name in names))
    stmt = (
        postgresql.insert(table)
        .from_select(names, source)
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(*returning)
    )
    return list(session.execute(stmt))


def _array_element(column: Any) -> Any:
    # An unsized element type: a cast to VARCHAR(n)[] would silently truncate longer values.
    return String() if isinstance(column.type, String) else column.type
