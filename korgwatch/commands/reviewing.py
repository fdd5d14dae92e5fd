"""`korgwatch review reopen` and `korgwatch review verify-log`: taking a decision back, and checking that the
review log is the one that was written. They join the `review` group defined in `storage.py`.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import inspect
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from db import review
from db.engine import make_engine, session_scope
from db.migrate import upgrade_engine
from db.review_chain import verify_chain
from korgwatch.commands.storage import ReviewerOption, review_app
from korgwatch.paths import default_db_url
from korgwatch.store import DbOption

err_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(message, highlight=False, markup=False)
    return typer.Exit(code)


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


@review_app.command("reopen")
def review_reopen(
    flag_id: int,
    reviewer: ReviewerOption,
    note: Annotated[str | None, typer.Option(help="Why (kept in the review log).")] = None,
    db: DbOption = None,
) -> None:
    """Take back the decision on a flag: it is open again, its appearance as before the decision.

    The decision stays in the review log; the reopening is a new entry after it.

    Example: korgwatch review reopen 12 -r alice --note "confirmed by mistake"
    """
    engine = make_engine(db or default_db_url())
    try:
        upgrade_engine(engine)
        with session_scope(engine) as session:
            review.reopen(session, flag_id, reviewer or getpass.getuser(), note)
    except review.ReviewError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database error: {_first_line(exc)}", 2) from None
    finally:
        engine.dispose()
    typer.echo(f"flag {flag_id} reopened")


@review_app.command("verify-log")
def review_verify_log(db: DbOption = None) -> None:
    """Check the review log's hash chain: intact, or from which entry on it was changed (exit 1).

    A read command: it never creates or upgrades a database.

    Example: korgwatch review verify-log --db postgresql://localhost/korgwatch
    """
    url = db or default_db_url()
    try:
        engine = make_engine(url)
    except ArgumentError as exc:
        raise _fail(f"--db {url}: {exc}", 2) from None
    database = engine.url.database or ""
    if engine.dialect.name == "sqlite" and database not in ("", ":memory:") and not Path(database).is_file():
        engine.dispose()
        raise _fail(f"{url}: no such database file", 2)
    try:
        if "review_log" not in inspect(engine).get_table_names():
            raise _fail(f"{engine.url.render_as_string()}: no korgwatch review log in this database", 2)
        with session_scope(engine) as session:
            report = verify_chain(session)
    except SQLAlchemyError as exc:
        raise _fail(f"database error: {_first_line(exc)}", 2) from None
    finally:
        engine.dispose()
    if not report.intact:
        raise _fail(f"review log broken from entry {report.broken_at}: {report.reason}")
    typer.echo(f"review log intact: {report.entries} entries")


def register(app: typer.Typer) -> None:
    """Nothing to add at the top level: importing this module added the commands to the `review` group."""
    del app
