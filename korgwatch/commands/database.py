"""`korgwatch db upgrade`: the schema, created or brought to the newest migration.

A module of its own so that it starts without the analyser: on a store that is already current it reads
one revision and says so, never importing Alembic (see db/migrate.py).
"""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from db.engine import StoreError
from korgwatch.commands.common import fail, store_of
from korgwatch.store import DbOption, first_line, upgrade_store

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or upgrade the schema to the newest migration, saying what was there and what it did.

    On a database that already holds other tables, it names them before adding korgwatch's beside them.
    Example: korgwatch db upgrade --db postgresql://localhost/korgwatch
    """
    store = store_of(db)
    try:
        lines = upgrade_store(store)
    except StoreError as exc:
        raise fail(f"store: {exc}", 2) from None
    except SQLAlchemyError as exc:
        raise fail(f"database error in {store.shown}: {first_line(exc)}", 2) from None
    for line in lines:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Attach the `db` group to the main app."""
    app.add_typer(db_app, name="db")
