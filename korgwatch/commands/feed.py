"""`korgwatch feed`: write an Atom feed to a file (for a static site), the same the review server publishes."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from korgwatch.commands.notify import DbOption, fail, load_config, store


def feed(
    which: Annotated[str, typer.Argument(help="sightings, queue, or a model name (e.g. MS-20).")] = "sightings",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Where the review page is published (default: public_base_url of notify.yaml)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Write an Atom feed: new sightings, the open review queue, or one model's sightings.

    Example: korgwatch feed sightings -o site/sightings.atom --base-url https://korg.example.org
    """
    from db.engine import read_scope
    from korgwatch.paths import config_dir
    from pipeline.rules import RulesError, load_rules
    from review import feeds

    base = (base_url or load_config(None).public_base_url or "http://127.0.0.1:8000").rstrip("/")
    if which not in ("sightings", "queue"):
        try:
            models = load_rules(config_dir()).models
        except RulesError as exc:
            raise fail(f"error: {exc}", 2) from None
        if which not in models:
            raise fail(f"error: {which!r} is not sightings, queue or a model of config/models.yaml", 2)
    with store(db, "read") as engine, read_scope(engine) as session:
        if which == "queue":
            body = feeds.queue_feed(session, base)
        else:
            body = feeds.sightings_feed(session, base, model=None if which == "sightings" else which)
    if out is None:
        typer.echo(body.decode("utf-8"), nl=False)
        return
    try:
        out.write_bytes(body)
    except OSError as exc:
        raise fail(f"error: {out}: cannot write: {exc.strerror or exc}", 2) from None
    typer.echo(f"wrote {out}", err=True)


def write_sightings_feed(db: str | None, start: date, end: date | None) -> None:
    """`korgwatch export --format atom`: the new-sightings feed of first sightings from `start` to `end`."""
    from db.engine import read_scope
    from review import feeds

    base = (load_config(None).public_base_url or "http://127.0.0.1:8000").rstrip("/")
    with store(db, "read") as engine, read_scope(engine) as session:
        body = feeds.sightings_feed(session, base, since=start, until=end)
    typer.echo(body.decode("utf-8"), nl=False)


def register(app: typer.Typer) -> None:
    """Add `feed` to the korgwatch command line."""
    app.command("feed")(feed)
