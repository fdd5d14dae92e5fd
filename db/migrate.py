"""Bring a database to the newest schema by running the Alembic migrations programmatically.

Writing commands call `upgrade()` first, so an empty database (a new SQLite file, a fresh PostgreSQL
database) becomes usable without a separate setup step; read commands only look (`schema_state`).

Every command checks the store's revision before it does anything, and importing Alembic and its migration
scripts costs more than the rest of a read command's start-up. So the newest revision is read from the
scripts' `revision`/`down_revision` lines as text (`head_revision`; a test checks it against Alembic's own
answer), the store's revision with one plain SELECT, and Alembic is imported only when the two differ: to
upgrade, or to tell an older store from a foreign one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from db.engine import READ_OPTION, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x6B6F7267  # "korg": the PostgreSQL advisory lock key held while migrating
VERSION_TABLE = "alembic_version"
SHARED_TABLES = frozenset({VERSION_TABLE, "apscheduler_jobs"})  # ours too: the scheduler's job store
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
_REVISION_LINE = re.compile(r"^revision\b[^=]*=\s*(.+)$", re.MULTILINE)
_DOWN_REVISION_LINE = re.compile(r"^down_revision\b[^=]*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


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


def script_head() -> str | None:
    """The newest revision as Alembic reads the scripts (imports them all): what `head_revision` must say."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> frozenset[str]:
    """Every revision id of our migration scripts (imports them all: asked only of a store not at the head)."""
    from alembic.script import ScriptDirectory

    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


@cache
def head_revision() -> str | None:
    """The newest revision id, read from the scripts as text (cheap: no Alembic, no script imported).

    Should the text not tell (a merge written in a way `head_in` does not read), Alembic's answer is used.
    """
    return head_in(VERSIONS_DIR) or script_head()


def head_in(versions: Path) -> str | None:
    """The one revision in `versions` that no script revises, from their `revision`/`down_revision` lines;
    None when the text does not give exactly one."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in versions.glob("*.py"):
        source = script.read_text(encoding="utf-8")
        found = _REVISION_LINE.search(source)
        if found is None:
            return None
        revisions.update(_QUOTED.findall(found[1]))
        for down in _DOWN_REVISION_LINE.findall(source):
            revised.update(_QUOTED.findall(down))
    heads = revisions - revised
    return next(iter(heads)) if len(heads) == 1 else None


def _stored_revision(connection: Connection) -> str | None:
    """The revision in alembic_version by one SELECT (no Alembic import); None when the table is empty.

    Several rows would mean branched heads, which our linear history never makes: Alembic then says what
    is wrong, as it always did.
    """
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) <= 1:
        return rows[0] if rows else None
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def schema_state(engine: Engine) -> SchemaState:
    """Look at the database's default schema without changing anything (a read command's check), in a deferred
    transaction: a read command must not wait for a writer."""
    with engine.execution_options(**{READ_OPTION: True}).connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = _stored_revision(connection) if VERSION_TABLE in tables else None
    ours = our_tables()
    return SchemaState(
        revision=revision,
        head=head_revision(),
        known_revision=revision is None or revision == head_revision() or revision in known_revisions(),
        ours=tuple(sorted(tables & ours)),
        others=tuple(sorted(tables - ours - SHARED_TABLES)),
    )


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our migrations, independent of the working directory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def current_revision(engine: Engine) -> str | None:
    """The store's revision, read in a deferred transaction: every command asks, none may wait for a writer."""
    with engine.execution_options(**{READ_OPTION: True}).connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        return _stored_revision(connection)


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade through an existing engine (shares its connection settings, e.g. SQLite pragmas)."""
    if revision == "head" and current_revision(engine) == head_revision():
        return  # the common case for every command: nothing to do, no Alembic start-up cost
    from alembic import command

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
