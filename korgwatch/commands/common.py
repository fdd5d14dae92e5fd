"""What the storage and report commands share: one-line failures, opening the store, loading the rules.

Kept light on purpose: a read command imports this and nothing of the analyser, the ingest or Alembic unless
it needs them (the rules are imported only by `rules()`, when a command asks for them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from db.engine import StoreError
from korgwatch.store import Mode, Store, first_line, open_store, resolve_store

if TYPE_CHECKING:
    from pipeline.rules import Rules

err_console = Console(stderr=True, soft_wrap=True)  # error lines stay whole, for grep

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Rules folder (default: KORGWATCH_CONFIG or the shipped config/)."),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as one plain line on stderr; raise the returned Exit to stop with `code`."""
    err_console.print(message, highlight=False, markup=False)
    return typer.Exit(code)


def store_of(db: str | None) -> Store:
    """The store of this command line (see korgwatch.store); a bad --db is one line and exit 2."""
    try:
        return resolve_store(db)
    except StoreError as exc:
        raise fail(f"store: {exc}", 2) from None


@contextmanager
def opened(store: Store, mode: Mode) -> Iterator[Engine]:
    """An engine on `store` after the checks of `mode`; a store or database problem is one line and exit 2."""
    try:
        with open_store(store, mode) as engine:
            yield engine
    except StoreError as exc:
        raise fail(f"store: {exc}", 2) from None
    except SQLAlchemyError as exc:
        raise fail(f"database error in {store.shown}: {first_line(exc)}", 2) from None


@contextmanager
def writing(db: str | None) -> Iterator[Engine]:
    """The store of a writing command, created or upgraded to the newest schema (so an empty one just works)."""
    with opened(store_of(db), "write") as engine:
        yield engine


@contextmanager
def reading(db: str | None) -> Iterator[tuple[Engine, Store]]:
    """The store of a read command: it must already hold korgwatch's schema (never created here)."""
    store = store_of(db)
    with opened(store, "read") as engine:
        yield engine, store


def rules_of(config: Path | None) -> Rules:
    """The rules in `config` (else the shipped ones); each problem on its own line and exit 2."""
    from korgwatch.paths import config_dir
    from pipeline.rules import RulesError, load_rules

    try:
        return load_rules(config or config_dir())
    except RulesError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), highlight=False, markup=False)
        raise typer.Exit(2) from None


def checked(action: Callable[[], str]) -> str:
    """The value a filter accepts (a canonical model name, a flag code), or its error as one line and exit 2."""
    from korgwatch.filters import FilterError

    try:
        return action()
    except FilterError as exc:
        raise fail(str(exc), 2) from None
