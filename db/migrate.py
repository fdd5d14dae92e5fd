"""Bring a database to the newest schema by running the Alembic migrations programmatically.

Writing commands call `upgrade()` first, so an empty database (a new SQLite file, a fresh PostgreSQL
database) becomes usable without a separate setup step; read commands only look (`schema_state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from db.engine import READ_OPTION, make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x6B6F7267  # "korg": the PostgreSQL advisory lock key held while migrating
VERSION_TABLE = "alembic_version"
SHARED_TABLES = frozenset({VERSION_TABLE, "apscheduler_jobs"})  # ours too: the scheduler's job store


@dataclass(frozen=True, slots=True)
class SchemaState:
    """What a database holds, seen from korgwatch: our revision (if any), our tables and everybody else's."""

    revision: str | None
    head: str | None
    known_revision: bool  # the revision is one of our migrations (False: another application's Alembic)
    ours: tuple[str, ...]
    others: tuple[str, ...]

    @property
    def is_korgwatch(self) -> bool:
        return self.revision is not None and self.known_revision

    @property
    def is_current(self) -> bool:
        return self.is_korgwatch and self.revision == self.head

    @property
    def is_empty(self) -> bool:
        return self.revision is None and not self.ours and not self.others


def our_tables() -> frozenset[str]:
    from db.models import Base

    return frozenset(Base.metadata.tables)


def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def schema_state(engine: Engine) -> SchemaState:
    """Look at the database's default schema without changing anything (a read command's check), in a deferred
    transaction: a read command must not wait for a writer."""
    with engine.execution_options(**{READ_OPTION: True}).connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = MigrationContext.configure(connection).get_current_revision() if VERSION_TABLE in tables else None
    ours = our_tables()
    return SchemaState(
        revision=revision,
        head=head_revision(),
        known_revision=revision is None or revision in known_revisions(),
        ours=tuple(sorted(tables & ours)),
        others=tuple(sorted(tables - ours - SHARED_TABLES)),
    )


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our migrations, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The store's revision, read in a deferred transaction: every command asks, none may wait for a writer."""
    with engine.execution_options(**{READ_OPTION: True}).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade through an existing engine (shares its connection settings, e.g. SQLite pragmas)."""
    if revision == "head" and current_revision(engine) == head_revision():
        return  # the common case for every command: nothing to do, no Alembic start-up cost
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Workers starting together on a fresh database would race to create the same tables: one at a
            # time, and each after the first finds the schema current. (SQLite: BEGIN IMMEDIATE serialises.)
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (the newest by default)."""
    engine = make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()
