"""Storage commands: `ingest`, `register import`, `review ...` (`db upgrade` is in database.py, the read
commands in reports.py: neither needs the analyser these import). Thin callers of `db/`: each opens the
database (upgrading an empty one), calls one library function inside one transaction and prints the rows as
a Rich table, JSON (one array) or CSV.
"""

from __future__ import annotations

import getpass
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from db import review
from db.engine import session_scope
from db.ingest import DEFAULT_BATCH_SIZE, IngestSummary, ingest_jsonl
from db.register import import_register_csv
from korgwatch.commands.common import ConfigOption, checked, err_console, fail, reading, rules_of, writing
from korgwatch.filters import canonical_model
from korgwatch.output import Format, FormatOption, emit
from korgwatch.progress import INTERRUPTED_EXIT, WorkProgress, count_lines, stop_on_interrupt
from korgwatch.store import DbOption

ReviewerOption = Annotated[
    str | None,
    typer.Option("--reviewer", "-r", help="Who decides (kept in the review log; default: your login name)."),
]


def reviewer_name(reviewer: str | None) -> str:
    """The reviewer for the log: the one named, else the login name (the same default as `korgwatch serve`)."""
    return reviewer or getpass.getuser()

register_app = typer.Typer(help="The register's known serials.", no_args_is_help=True)
review_app = typer.Typer(help="Decide flagged appearances (each decision is logged).", no_args_is_help=True)


# --- ingest, register ------------------------------------------------------------------------------------


def ingest(
    source: Annotated[
        str, typer.Argument(help="A JSON Lines file of listing records, or - for standard input.")
    ],
    db: DbOption = None,
    config: ConfigOption = None,
    default_source: Annotated[
        str | None, typer.Option("--source", help="Source name for records that have none.")
    ] = None,
    skip: Annotated[int, typer.Option(min=0, help="Skip the first N lines (resume an interrupted ingest).")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per transaction.")] = DEFAULT_BATCH_SIZE,
    repost_days: Annotated[int, typer.Option(help="Same seller within this many days = repost.")] = 60,
    fmt: FormatOption = Format.table,
) -> None:
    """Store listings and classify the serials in them; bad lines are reported by number and skipped.

    One JSON object per line, UTF-8 (docs/ingest.md has the full format and every check):
    - source, url, title: required strings (--source fills in a missing source)
    - external_id: string or integer, the listing's key in its source (default: the url)
    - body, seller: strings; posted_at: ISO-8601 time (UTC if no offset)
    - price: decimal string or number, kept exactly in cents; currency: at most 8 characters
    - images: list of URL strings; extra: object, kept as is. Other keys are ignored.

    Ctrl-C stops after the batch in flight and prints the --skip N to resume with (exit 130).

    Example: korgwatch ingest examples/listings.jsonl
    """
    rules = rules_of(config)
    name = "<stdin>" if source == "-" else source
    done = {"lines": skip, "stored": 0}  # what the last stored batch reached: the resume point

    def progress(summary: IngestSummary) -> None:
        done["lines"], done["stored"] = summary.lines_done, summary.listings_stored
        bar.update(summary.lines_done, summary.listings_stored, len(summary.errors))

    try:
        with writing(db) as engine:
            try:
                stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
                total = None if source == "-" else count_lines(source)
            except OSError as exc:
                raise fail(f"{source}: cannot read ({exc.strerror})", 2) from None
            with stream, WorkProgress(f"ingest {name}", total) as bar, stop_on_interrupt() as stop:
                summary = ingest_jsonl(
                    stream,
                    engine,
                    rules,
                    batch_size=batch_size,
                    repost_window=timedelta(days=repost_days),
                    default_source=default_source,
                    skip=skip,
                    progress=progress,
                    stop=stop.is_set,
                )
    except KeyboardInterrupt:  # a second Ctrl-C (or one before the work began): the batch in flight rolled back
        _interrupted(name, done["lines"], done["stored"], skip)
    except OSError as exc:
        raise fail(f"{name}: cannot read ({exc.strerror})", 2) from None
    for message in sorted([*summary.errors, *summary.notes], key=_line_number):
        err_console.print(f"{name}: {message}", highlight=False, markup=False)
    if summary.interrupted:
        _interrupted(name, summary.lines_done, summary.listings_stored, skip)
    bar.summary(f"ingest {name}")
    data = summary.to_dict()
    data.pop("errors")
    data["errors"] = len(summary.errors)
    emit([data], fmt.value, list(data), title="ingest")
    if summary.errors:
        raise typer.Exit(1)


def _line_number(message: str) -> int:
    """The first line number a message names ("line 7: ..." or "line 5–6: ..."), for printing in file order."""
    found = re.match(r"line (\d+)", message)
    return int(found[1]) if found else 0


def _interrupted(name: str, lines_done: int, stored: int, skip: int) -> None:
    """Say what is done and how to resume, then exit 130."""
    resume = f"korgwatch ingest {'-' if name == '<stdin>' else name} --skip {lines_done}"
    done = f"lines {skip + 1}–{lines_done} done" if lines_done > skip else "no line done"
    err_console.print(
        f"{name}: interrupted: {done} ({stored} listings stored); resume with: {resume}",
        highlight=False,
        markup=False,
    )
    raise typer.Exit(INTERRUPTED_EXIT)


@register_app.command("import")
def register_import(
    path: Annotated[Path, typer.Argument(help="CSV with columns model, serial, date, note, url.")],
    db: DbOption = None,
    config: ConfigOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Import known serials from the register; bad rows are reported with their line, good ones kept.

    Example: korgwatch register import config/register/seed.csv
    """
    if path.is_dir():
        raise fail(f"{path}: is a directory; give the register's CSV file (e.g. {path / 'seed.csv'})", 2)
    rules = rules_of(config)
    if not path.is_file():
        raise fail(f"{path}: no such file", 2)
    try:
        lines = count_lines(path) or 0
        with WorkProgress(f"register import {path}", lines, unit="rows") as bar, writing(db) as engine:
            with session_scope(engine) as session:  # one transaction: Ctrl-C rolls it all back
                summary = import_register_csv(session, path, rules)
            bar.update(lines, summary.added + summary.updated + summary.unchanged, len(summary.errors))
    except KeyboardInterrupt:
        raise fail(f"{path}: interrupted: nothing imported (run the same command again)", INTERRUPTED_EXIT) from None
    except OSError as exc:
        raise fail(f"{path}: cannot read ({exc.strerror})", 2) from None
    for error in summary.errors:
        err_console.print(error, highlight=False, markup=False)
    bar.summary(f"register import {path}")
    data = summary.to_dict()
    data["errors"] = len(summary.errors)
    emit([data], fmt.value, list(data), title="register import")
    if summary.errors:
        raise typer.Exit(1)


# --- review ----------------------------------------------------------------------------------------------


def _decide(db: str | None, action: Callable[[Any], Any]) -> None:
    with reading(db) as (engine, _):
        try:
            with session_scope(engine) as session:
                action(session)
        except review.ReviewError as exc:
            raise fail(str(exc)) from None


@review_app.command("confirm")
def review_confirm(
    flag_id: int,
    reviewer: ReviewerOption = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOption = None,
) -> None:
    """The serial was read right: close the flag; the appearance counts.

    Example: korgwatch review confirm 12 -r alice --note "s/n visible on the back panel photo"
    """
    _decide(db, lambda s: review.confirm(s, flag_id, reviewer_name(reviewer), note))
    typer.echo(f"flag {flag_id} confirmed")


@review_app.command("correct")
def review_correct(
    flag_id: int,
    reason: Annotated[str, typer.Option(help="Why (kept in the review log).")],
    reviewer: ReviewerOption = None,
    serial: Annotated[str | None, typer.Option(help="The right serial.")] = None,
    model: Annotated[str | None, typer.Option(help="The right model.")] = None,
    force: Annotated[bool, typer.Option(help="Keep a serial that fits none of the model's blocks.")] = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Correct the serial and/or model (checked against the number blocks).

    Example: korgwatch review correct 12 -r alice --serial 142817 --reason "photo shows 142817"
    """
    if serial is None and model is None:
        raise fail("give --serial and/or --model", 2)
    rules = rules_of(config)
    if model is not None:
        model = checked(lambda: canonical_model(rules, model or ""))
    _decide(
        db,
        lambda s: review.correct(
            s, flag_id, reviewer_name(reviewer), rules, serial=serial, model=model, reason=reason, force=force
        ),
    )
    typer.echo(f"flag {flag_id} corrected")


@review_app.command("dismiss")
def review_dismiss(
    flag_id: int,
    reviewer: ReviewerOption = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOption = None,
) -> None:
    """Not a sighting: the appearance is left out of the counts.

    Example: korgwatch review dismiss 12 -r alice --note "photo is of a Roland"
    """
    _decide(db, lambda s: review.dismiss(s, flag_id, reviewer_name(reviewer), note))
    typer.echo(f"flag {flag_id} dismissed")


@review_app.command("kind")
def review_kind(
    appearance_id: int,
    kind: Annotated[str, typer.Argument(help="new, duplicate_sale or repost")],
    reviewer: ReviewerOption = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOption = None,
) -> None:
    """Overrule the classification of an appearance.

    Example: korgwatch review kind 40 repost -r alice --note "different photographs, same seller"
    """
    _decide(db, lambda s: review.mark_kind(s, appearance_id, kind, reviewer_name(reviewer), note))
    typer.echo(f"appearance {appearance_id} marked {kind}")


@review_app.command("unit")
def review_unit(
    appearance_id: int,
    reviewer: ReviewerOption = None,
    later: Annotated[
        list[int] | None,
        typer.Option("--also", help="A later appearance of the same unit that belongs to the new one (repeatable)."),
    ] = None,
    note: Annotated[str | None, typer.Option()] = None,
    db: DbOption = None,
) -> None:
    """A different unit with the same serial: the appearance becomes the first sighting of a new unit.

    Example: korgwatch review unit 40 -r alice --also 52 --note "visibly different from the first"
    """
    result: list[str] = []

    def decide(session: Any) -> None:
        instrument = review.mark_different_unit(
            session, appearance_id, reviewer_name(reviewer), note, later=later or ()
        )
        result.append(f"{instrument.model} {instrument.serial} unit {instrument.unit}")

    _decide(db, decide)
    typer.echo(f"appearance {appearance_id} is now the first sighting of {result[0]}")


@review_app.command("note")
def review_note(flag_id: int, note: str, reviewer: ReviewerOption = None, db: DbOption = None) -> None:
    """Add a remark to a flag without deciding it.

    Example: korgwatch review note 12 "s/n only visible on box" -r alice
    """
    _decide(db, lambda s: review.add_note(s, flag_id, reviewer_name(reviewer), note))
    typer.echo(f"note added to flag {flag_id}")


def register(app: typer.Typer) -> None:
    """Attach the storage commands to the main app."""
    app.add_typer(register_app, name="register")
    app.add_typer(review_app, name="review")
    app.command("ingest")(ingest)
