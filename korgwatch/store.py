"""Which store a command uses, and how it may open it: one rule for every command.

Resolution: `--db`, then `KORGWATCH_DB`, then `db:` in the schedule file (config/schedule.yaml), then the SQLite
file in the data directory. Read commands open an existing korgwatch store only; writing commands create and
migrate one, but refuse a database holding another application's tables (`korgwatch db upgrade` says whose
tables they are and adds ours beside them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from db.engine import StoreError, database_url, make_engine
from db.migrate import SchemaState, schema_state, upgrade_engine
from korgwatch.paths import config_dir, data_dir

DB_HELP = (
    "The store: a SQLite file path or a database URL (default: KORGWATCH_DB, then `db:` in config/schedule.yaml, "
    "then the SQLite file in the data dir)."
)
DbOption = Annotated[str | None, typer.Option("--db", help=DB_HELP)]  # every command's --db, resolved here

Mode = Literal["read", "write", "upgrade"]
DATA_DIR_PLACEHOLDER = "{data_dir}"


@dataclass(frozen=True, slots=True)
class Store:
    """A resolved store: its URL and where the choice came from (shown in every table title)."""

    url: str
    origin: str

    @property
    def shown(self) -> str:
        """The URL without its password."""
        return make_url(self.url).render_as_string(hide_password=True)

    def describe(self) -> str:
        return f"{self.shown} ({self.origin})"

    def option(self) -> str:
        """`--db …` to repeat in a hint (the password left out)."""
        return f"--db {self.shown}"


def default_schedule_path() -> Path:
    return config_dir() / "schedule.yaml"


def configured_db(schedule_path: Path | None = None) -> str | None:
    """The `db:` of the schedule file as a URL (a path is relative to that file; `{data_dir}` expands), or None.

    Only this key is read here, so that a command that does not schedule is not stopped by the rest of the file.
    """
    import yaml  # here, not at the top: a command given --db or KORGWATCH_DB never reads the file

    path = schedule_path or default_schedule_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise StoreError(f"{where}: not valid YAML") from None
    value = raw.get("db") if isinstance(raw, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{path}: db: must be a database URL or a file path (quote a value starting with {{)")
    value = value.replace(DATA_DIR_PLACEHOLDER, str(data_dir()))
    if "://" not in value and not Path(value).expanduser().is_absolute():
        value = str(path.parent / value)
    return value


def resolve_store(option: str | None = None, schedule_path: Path | None = None) -> Store:
    """The store of this command line: `--db`, then KORGWATCH_DB, then the schedule file's `db:`, then default."""
    if option:
        return Store(database_url(option), "--db")
    env = os.environ.get("KORGWATCH_DB", "").strip()
    if env:
        try:
            return Store(database_url(env), "KORGWATCH_DB")
        except StoreError as exc:
            raise StoreError(f"KORGWATCH_DB: {exc}") from None
    path = schedule_path or default_schedule_path()
    configured = configured_db(path)
    if configured:
        try:
            return Store(database_url(configured), f"db: in {path}")
        except StoreError as exc:
            raise StoreError(f"{path}: db: {exc}") from None
    return Store(f"sqlite:///{data_dir() / 'korgwatch.sqlite'}", "default")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other backends and in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _tables(names: tuple[str, ...], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


# Tables that give away which tool manages a database: named in the message when present.
OWNER_MARKERS = {
    "django_migrations": "a Django application",
    "schema_migrations": "a Rails (or golang-migrate) application",
    "flyway_schema_history": "a Flyway-managed application",
    "databasechangelog": "a Liquibase-managed application",
    "knex_migrations": "a Knex application",
    "_prisma_migrations": "a Prisma application",
    "spatial_ref_sys": "PostGIS",
}


def foreign_tables_message(store: Store, state: SchemaState) -> str:
    """Whose tables these are: not korgwatch's, named, and the tool that manages them when a marker shows it."""
    owners = sorted({OWNER_MARKERS[t.lower()] for t in state.others if t.lower() in OWNER_MARKERS})
    whose = f", apparently {' and '.join(owners)}'s" if owners else ""
    return (
        f"{store.shown} holds {len(state.others)} table(s) that are not korgwatch's{whose} "
        f"({_tables(state.others)})"
    )


def check_readable(store: Store, state: SchemaState) -> None:
    """Refuse, in one line, a store without korgwatch's current schema (a read command never creates one)."""
    if state.is_current:
        return
    if state.revision is not None and not state.known_revision:
        raise StoreError(
            f"{store.shown} is at schema revision {state.revision!r}, which this korgwatch does not know "
            "(another application's Alembic, or a newer korgwatch)"
        )
    if state.is_korgwatch:
        raise StoreError(
            f"korgwatch's schema in {store.shown} is at revision {state.revision}, this korgwatch needs "
            f"{state.head}: run `korgwatch db upgrade {store.option()}`"
        )
    if state.others:
        raise StoreError(
            f"{foreign_tables_message(store, state)} and none of korgwatch's: is it the right database? "
            f"(`korgwatch db upgrade {store.option()}` adds korgwatch's tables beside them)"
        )
    raise StoreError(
        f"{store.shown} ({store.origin}) has no korgwatch data yet: store some first (`korgwatch ingest`, "
        "`korgwatch crawl`, `korgwatch db upgrade`) or name another store with --db"
    )


def check_writable(store: Store, state: SchemaState, mode: Mode) -> None:
    """A writing command adds korgwatch's schema to an empty database only; `db upgrade` also beside others."""
    if state.revision is not None and not state.known_revision:
        raise StoreError(
            f"{store.shown} is at schema revision {state.revision!r}, which this korgwatch does not know "
            "(another application's Alembic, or a newer korgwatch): use a database of its own"
        )
    if mode == "write" and not state.is_korgwatch and state.others:
        raise StoreError(
            f"{foreign_tables_message(store, state)}: run `korgwatch db upgrade {store.option()}` to add "
            "korgwatch's tables beside them, or name another store with --db"
        )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def open_store(store: Store, mode: Mode = "read") -> Iterator[Engine]:
    """An engine on the store, after the checks of `mode`; problems become one-line StoreErrors.

    read: the store must exist with korgwatch's current schema. write: created or upgraded, unless another
    application's tables are there. upgrade: created or upgraded, beside other tables too.
    """
    path = sqlite_file(store.url)
    if mode == "read":
        if path is not None and not path.exists():
            raise StoreError(
                f"no korgwatch store at {path} ({store.origin}): nothing has been stored there yet "
                "(`korgwatch ingest`, `korgwatch crawl` or `korgwatch db upgrade` create it)"
            )
        if path is not None and path.is_dir():
            raise StoreError(f"{path} is a directory, not a SQLite file")
    elif path is not None:
        _make_room_for(path)
    engine = make_engine(store.url)
    try:
        state = _state_of(store, engine)
        if mode == "read":
            check_readable(store, state)
        else:
            check_writable(store, state, mode)
            if not state.is_current:
                upgrade_engine(engine)
        yield engine
    finally:
        engine.dispose()


def _make_room_for(path: Path) -> None:
    """A SQLite file a writer may create: not a directory, its folder made."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a SQLite file")
    path.parent.mkdir(parents=True, exist_ok=True)


def _state_of(store: Store, engine: Engine) -> SchemaState:
    """The store's schema, or a one-line StoreError when the database cannot be opened."""
    try:
        return schema_state(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open {store.shown}: {_first_line(exc)}") from None


def upgrade_store(store: Store) -> list[str]:
    """`korgwatch db upgrade`: create or upgrade the schema and say, line by line, what was there and what was done."""
    path = sqlite_file(store.url)
    new_file = path is not None and not path.exists()
    if path is not None:
        _make_room_for(path)
    engine = make_engine(store.url)
    try:
        before = _state_of(store, engine)
        check_writable(store, before, "upgrade")
        lines: list[str] = []
        if before.others and not before.is_korgwatch:
            lines.append(f"{foreign_tables_message(store, before)}: adding korgwatch's tables beside them")
        if before.is_current:
            lines.append(f"{store.describe()} is up to date (schema revision {before.revision}): nothing to do")
            return lines
        upgrade_engine(engine)
        after = schema_state(engine)
        added = tuple(sorted(set(after.ours) - set(before.ours)))
        if before.is_korgwatch:
            lines.append(
                f"upgraded {store.describe()} from schema revision {before.revision} to {after.revision}"
                + (f"; new tables: {_tables(added, 20)}" if added else "")
            )
        else:
            where = f"new file {path}" if new_file else store.describe()
            lines.append(
                f"created korgwatch's schema in {where}: {len(added)} tables ({_tables(added, 20)}), "
                f"revision {after.revision}"
            )
        return lines
    finally:
        engine.dispose()


def first_line(exc: BaseException) -> str:
    """The first line of an error, for one-line reports."""
    return _first_line(exc)


def writable_store(option: str | None) -> Store:
    """A writing command's store, resolved and created or upgraded (refusing other applications' tables).

    Raises StoreError; the command turns it into one line and exit 2.
    """
    store = resolve_store(option)
    try:
        with open_store(store, "write"):
            pass
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open {store.shown}: {_first_line(exc)}") from None
    return store
