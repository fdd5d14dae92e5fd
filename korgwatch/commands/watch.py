"""`korgwatch watch add|list|remove|import`: the watchlist (a listing showing a watched serial sends `watch_hit`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from korgwatch.commands.notify import DbOption, FormatOption, fail, store
from korgwatch.commands.storage import Format, emit

watch_app = typer.Typer(help="Watch models and serials: a listing showing one is told at once.", no_args_is_help=True)
SerialArgument = Annotated[
    str, typer.Argument(help="A serial (439057), a range in one block (439000-439099), or * for the whole model.")
]


def _canonical(name: str) -> str:
    """The model's name as config/models.yaml writes it (aliases accepted); raises WatchError when unknown."""
    from db.watches import WatchError
    from korgwatch.paths import config_dir
    from pipeline.normalise import alias_key
    from pipeline.rules import RulesError, load_rules

    try:
        rules = load_rules(config_dir())
    except RulesError as exc:
        raise WatchError(str(exc)) from None
    if name in rules.models:
        return name
    key = alias_key(name)
    for canonical, rule in rules.models.items():
        if key in {alias_key(canonical), *(alias_key(a) for a in rule.aliases)}:
            return canonical
    raise WatchError(f"unknown model {name!r} (see config/models.yaml)")


def _model(name: str) -> str:
    """`_canonical`, or one line and exit status 2."""
    from db.watches import WatchError

    try:
        return _canonical(name)
    except WatchError as exc:
        raise fail(f"error: {exc}", 2) from None


@watch_app.command("add")
def watch_add(
    model: Annotated[str, typer.Argument(help="The model, e.g. MS-20.")],
    serial: SerialArgument = "*",
    note: Annotated[str | None, typer.Option(help="Why (e.g. 'stolen 2024, police ref …').")] = None,
    db: DbOption = None,
) -> None:
    """Watch a serial, a serial range or a whole model.

    Example: korgwatch watch add MS-20 439057 --note "stolen 2024"
    """
    from db.engine import session_scope
    from db.watches import WatchError, add_watch

    canonical = _model(model)
    with store(db) as engine:
        try:
            with session_scope(engine) as session:
                watch = add_watch(session, canonical, serial, note, datetime.now(UTC))
                shown = f"{watch.model} {watch.serial_low or '*'}"
        except WatchError as exc:
            raise fail(f"error: {exc}", 2) from None
    typer.echo(f"watching {shown}")


@watch_app.command("remove")
def watch_remove(model: Annotated[str, typer.Argument()], serial: SerialArgument = "*", db: DbOption = None) -> None:
    """Stop watching.

    Example: korgwatch watch remove MS-20 439057
    """
    from db.engine import session_scope
    from db.watches import WatchError, remove_watch

    canonical = _model(model)
    with store(db) as engine:
        try:
            with session_scope(engine) as session:
                removed = remove_watch(session, canonical, serial)
        except WatchError as exc:
            raise fail(f"error: {exc}", 2) from None
    if not removed:
        raise fail(f"error: no watch on {canonical} {serial}", 1)
    typer.echo(f"no longer watching {canonical} {serial}")


@watch_app.command("list")
def watch_list(db: DbOption = None, fmt: FormatOption = Format.table) -> None:
    """Every watch.

    Example: korgwatch watch list -f csv
    """
    from db.engine import read_scope
    from db.watches import list_watches

    with store(db, "read") as engine, read_scope(engine) as session:
        rows = [
            {"model": w.model, "serial": w.low if w.low == w.high else f"{w.low}-{w.high}", "note": w.note}
            for w in list_watches(session)
        ]
    for row in rows:
        row["serial"] = row["serial"] or "*"
    emit(rows, fmt.value, ("model", "serial", "note"), title="watches")


@watch_app.command("import")
def watch_import(
    path: Annotated[Path, typer.Argument(help="CSV with a header: model,serial[,note] (serial: one, a range, or *).")],
    db: DbOption = None,
) -> None:
    """Add the watches of a CSV file; bad rows are reported with their line and the good ones kept.

    Example: korgwatch watch import stolen.csv
    """
    from db.engine import session_scope
    from db.watches import WatchError, add_watch

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise fail(f"error: {path}: cannot read: {exc.strerror or exc}", 2) from None
    except UnicodeDecodeError as exc:
        raise fail(f"error: {path}: not UTF-8 (byte {exc.start})", 2) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or not {"model", "serial"} <= {f.strip() for f in reader.fieldnames}:
        raise fail(f"error: {path}:1: expected a header with model,serial[,note]", 2)
    added, bad = 0, 0
    with store(db) as engine, session_scope(engine) as session:
        for row in reader:
            line = reader.line_num
            values = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                canonical = _canonical(values["model"])
                add_watch(session, canonical, values["serial"] or "*", values.get("note") or None, datetime.now(UTC))
                added += 1
            except WatchError as exc:
                bad += 1
                typer.echo(f"error: {path}:{line}: {exc}", err=True)
    typer.echo(f"imported {added} watches, {bad} bad rows")
    if bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `watch` group to the korgwatch command line."""
    app.add_typer(watch_app, name="watch")
