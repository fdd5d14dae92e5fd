"""Engines and sessions: one place that knows how each backend must be configured.

SQLite gets WAL (readers do not block the crawler's writes), foreign keys ON (off by default in SQLite),
a busy timeout and BEGIN IMMEDIATE so that two writers wait for each other instead of failing. The caller
owns the transaction: `with session_scope(engine) as session:` commits on success, rolls back on error.
Reads go through `read_scope(engine)`: a deferred transaction, which WAL lets run beside a writer instead of
queueing behind it. A writer that waited the busy timeout in vain gets "database is locked" (`store_locked`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
BUSY_TIMEOUT_ENV = "KORGWATCH_SQLITE_BUSY_TIMEOUT"  # seconds a writer waits for another writer's lock
READ_OPTION = "korgwatch_read"  # execution option: begin a deferred (read) transaction


def busy_timeout_ms() -> int:
    """The busy timeout: KORGWATCH_SQLITE_BUSY_TIMEOUT seconds if set (and a number), else 30 s."""
    try:
        return max(0, int(float(os.environ[BUSY_TIMEOUT_ENV]) * 1000))
    except (KeyError, ValueError):
        return SQLITE_BUSY_TIMEOUT_MS


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` as psycopg 3 URLs, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class StoreError(ValueError):
    """A store that cannot be used as named; the message is one line for the user."""


def database_url(value: str) -> str:
    """The database URL for what a user typed: a URL, or a path to a SQLite file (the sqlite-utils habit).

    A path (no `://`) may be relative to the working directory. A URL that does not parse, names a backend
    SQLAlchemy does not know, or needs a driver that is not installed is refused with a StoreError saying which.
    """
    text = value.strip()
    shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", text)  # never echo a password
    if not text:
        raise StoreError("empty database name: give a file path or a URL such as postgresql://host/db")
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    try:
        url = make_url(normalise_url(text))
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"{shown!r} is not a valid database URL ({exc})") from None
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise StoreError(
            f"{shown!r}: unknown database backend {url.get_backend_name()!r} (use sqlite:///FILE, "
            "postgresql://HOST/DB or a file path)"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise StoreError(
            f"{shown!r}: the {url.get_driver_name()!r} driver is not installed ({exc}); korgwatch ships "
            "sqlite and postgresql+psycopg"
        ) from None
    return url.render_as_string(hide_password=False)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):  # pragma: no cover - other SQLite drivers
        return
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling starts transactions late).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms()}")
    cursor.execute("PRAGMA foreign_keys = ON")
    if dbapi_connection.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL keeps it consistent
        cursor.execute("PRAGMA cache_size = -65536")  # 64 MiB: index look-ups of a large backfill stay in memory
    cursor.close()


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch a file to WAL (it stays so); a new file's switch waits for others opening it at the same moment.

    Changing the journal mode needs the file to itself and reports "database is locked" at once instead of
    waiting on the busy timeout, so processes starting together on a new file retry until it is done.
    """
    deadline = time.monotonic() + busy_timeout_ms() / 1000
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _begin(connection: Any) -> None:
    # Writers take the write lock at BEGIN: two writers then queue on the busy timeout instead of one failing
    # with SQLITE_BUSY when it upgrades a read snapshot that the other has overtaken. Reads (read_scope) begin
    # deferred and take only a WAL snapshot, so they never wait for a writer.
    if connection.get_execution_options().get(READ_OPTION):
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for a SQLite file or PostgreSQL (psycopg 3), configured for concurrent use."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms() / 1000}, **kwargs)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the CLI prints them afterwards)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back (and re-raise) when it fails."""
    with session_factory(engine)() as session, session.begin():
        yield session


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A read-only transaction: on SQLite a deferred one, which does not wait for (or block) a writer.

    Writing in it may fail with "database is locked" when another writer got there first: write in
    `session_scope`. Rolled back at the end (there is nothing to commit).
    """
    with session_factory(engine.execution_options(**{READ_OPTION: True}))() as session:
        yield session  # begins at its first statement; closing the session rolls it back


def store_locked(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "database is locked": another writer held the lock past the busy timeout."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig or exc)


def store_error_message(url: str, exc: BaseException) -> str:
    """The one line a command prints when the store fails it: locked past the busy timeout, full, or gone."""
    where = make_url(url).render_as_string(hide_password=True)
    if store_locked(exc):
        waited = busy_timeout_ms() / 1000
        return (
            f"error: {where}: the store is locked by another writer (waited {waited:g} s): "
            f"try again when it is done (or raise {BUSY_TIMEOUT_ENV})"
        )
    original = getattr(exc, "orig", None) or exc
    detail = " ".join(str(original).split())[:300]
    if "disk is full" not in detail and _sqlite_disk_full(url):
        detail += " (the disk holding the store is full)"  # SQLite may say only "disk I/O error" then
    return f"error: {where}: the store failed: {type(original).__name__}: {detail}"


def _sqlite_disk_full(url: str) -> bool:
    """Whether a SQLite store's file sits on a file system with no room left (what an I/O error then means)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return False
    try:
        stats = os.statvfs(os.path.dirname(os.path.abspath(parsed.database)))
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024
