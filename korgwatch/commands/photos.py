"""`korgwatch photos SERIAL` and `korgwatch photos gc`: a serial's kept photos with their matches; freeing unused files.

Thin callers of db.photo_queries and crawler.photo_gc. `photos SERIAL` reads (it never creates a store);
`photos gc` deletes only what no listing uses, and only when it is older than the grace period.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from korgwatch.commands.notify import DbOption, fail, store
from korgwatch.output import Format, FormatOption, emit

SHOW = "show"
COLUMNS = ("listing_id", "source", "model", "position", "sha", "size", "source_url", "matches")


class SerialOrCommand(TyperGroup):
    """`photos 141567` means `photos show 141567`: a first word that is no subcommand is a serial."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Any: typer vendors its own click.Context
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = [SHOW, *args]
        return super().parse_args(ctx, args)


photos_app = typer.Typer(
    cls=SerialOrCommand,
    help="Kept photos: a serial's photos with their near-duplicates (`photos SERIAL`), `photos gc` frees unused ones.",
    no_args_is_help=True,
)


def photo_root() -> Path:
    """Where the crawl keeps photos (crawler/photo_store.py lays the folder out)."""
    from crawler.photo_store import photo_dir

    return photo_dir()


@photos_app.command(SHOW)
def photos_show(
    serial: Annotated[str, typer.Argument(help="The serial number.")],
    model: Annotated[str | None, typer.Option(help="Only this model (any name or alias).")] = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The kept photos of every listing showing SERIAL, with the other listings' photos that match them.

    Example: korgwatch photos 141567 --model ms20
    """
    from db.engine import read_scope
    from db.photo_queries import serial_photos
    from korgwatch.store import resolve_store

    if model is not None:
        model = _canonical(model)
    with store(db, "read") as engine, read_scope(engine) as session:
        rows: list[dict[str, Any]] = [photo.to_dict() for photo in serial_photos(session, serial, model)]
    emit(rows, fmt.value, COLUMNS, title=f"photos of {serial}", store=resolve_store(db).describe())


@photos_app.command("gc")
def photos_gc(
    grace_minutes: Annotated[
        int, typer.Option("--grace-minutes", min=0, help="Leave files and rows younger than this (a crawl's).")
    ] = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be freed; delete nothing.")] = False,
    db: DbOption = None,
) -> None:
    """Remove the photo files, thumbnails and `photos` rows no listing uses (older than the grace period).

    Example: korgwatch photos gc --dry-run
    """
    from crawler.photo_gc import collect

    with store(db, "read") as engine:
        report = collect(engine, photo_root(), timedelta(minutes=grace_minutes), dry_run=dry_run)
    typer.echo(report.describe())


def _canonical(model: str) -> str:
    """The model's canonical name, or one line and exit status 2."""
    from korgwatch.filters import FilterError, canonical_model
    from korgwatch.paths import config_dir
    from pipeline.rules import RulesError, load_rules

    try:
        return canonical_model(load_rules(config_dir()), model)
    except (RulesError, FilterError) as exc:
        raise fail(f"error: {exc}", 2) from None


def register(app: typer.Typer) -> None:
    """Add the `photos` group to the korgwatch command line."""
    app.add_typer(photos_app, name="photos")
