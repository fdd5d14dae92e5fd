"""Storage commands: `db upgrade`, `ingest`, `register import`, `review ...`, `queue`, `history`, `export`,
`stats`. Thin callers of `db/`: each opens the database (upgrading an empty one), calls one library function
inside one transaction and prints the rows as a Rich table, JSON (one array) or CSV.
"""

from __future__ import annotations

import getpass
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from db import queries, review
from db.engine import StoreError, read_scope, session_scope
from db.ingest import DEFAULT_BATCH_SIZE, IngestSummary, ingest_jsonl
from db.register import import_register_csv
from korgwatch.filters import FilterError, canonical_model, flag_code
from korgwatch.output import Format, FormatOption, emit, nothing_found
from korgwatch.paths import config_dir
from korgwatch.progress import INTERRUPTED_EXIT, WorkProgress, count_lines, stop_on_interrupt
from korgwatch.store import DbOption, Store, first_line, open_store, resolve_store, upgrade_store
from pipeline.results import ALL_FLAG_CODES
from pipeline.rules import Rules, RulesError, load_rules

err_console = Console(stderr=True, soft_wrap=True)  # error lines stay whole, for grep


class ExportFormat(StrEnum):
    markdown = "markdown"
    table = "table"
    json = "json"
    csv = "csv"
    atom = "atom"  # the review server's new-sightings feed, for a static site (review/feeds.py)


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Rules folder (default: KORGWATCH_CONFIG or the shipped config/)."),
]
ReviewerOption = Annotated[
    str | None,
    typer.Option("--reviewer", "-r", help="Who decides (kept in the review log; default: your login name)."),
]


def reviewer_name(reviewer: str | None) -> str:
    """The reviewer for the log: the one named, else the login name (the same default as `korgwatch serve`)."""
    return reviewer or getpass.getuser()

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
register_app = typer.Typer(help="The register's known serials.", no_args_is_help=True)
review_app = typer.Typer(help="Decide flagged appearances (each decision is logged).", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(message, highlight=False, markup=False)
    return typer.Exit(code)


def _store(db: str | None) -> Store:
    """The store of this command line (see korgwatch.store); a bad --db is one line and exit 2."""
    try:
        return resolve_store(db)
    except StoreError as exc:
        raise _fail(f"store: {exc}", 2) from None


@contextmanager
def _open(store: Store, mode: str) -> Iterator[Engine]:
    try:
        with open_store(store, mode) as engine:  # type: ignore[arg-type]
            yield engine
    except StoreError as exc:
        raise _fail(f"store: {exc}", 2) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database error in {store.shown}: {first_line(exc)}", 2) from None


@contextmanager
def _engine(db: str | None) -> Iterator[Engine]:
    """The store of a writing command, created or upgraded to the newest schema (so an empty one just works)."""
    with _open(_store(db), "write") as engine:
        yield engine


@contextmanager
def _read(db: str | None) -> Iterator[tuple[Engine, Store]]:
    """The store of a read command: it must already hold korgwatch's schema (never created here)."""
    store = _store(db)
    with _open(store, "read") as engine:
        yield engine, store


def _rules(config: Path | None) -> Rules:
    try:
        return load_rules(config or config_dir())
    except RulesError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), highlight=False, markup=False)
        raise typer.Exit(2) from None


# --- db, ingest, register ------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or upgrade the schema to the newest migration, saying what was there and what it did.

    On a database that already holds other tables, it names them before adding korgwatch's beside them.
    Example: korgwatch db upgrade --db postgresql://localhost/korgwatch
    """
    store = _store(db)
    try:
        lines = upgrade_store(store)
    except StoreError as exc:
        raise _fail(f"store: {exc}", 2) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database error in {store.shown}: {first_line(exc)}", 2) from None
    for line in lines:
        typer.echo(line)


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
    rules = _rules(config)
    name = "<stdin>" if source == "-" else source
    done = {"lines": skip, "stored": 0}  # what the last stored batch reached: the resume point

    def progress(summary: IngestSummary) -> None:
        done["lines"], done["stored"] = summary.lines_done, summary.listings_stored
        bar.update(summary.lines_done, summary.listings_stored, len(summary.errors))

    try:
        with _engine(db) as engine:
            try:
                stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
                total = None if source == "-" else count_lines(source)
            except OSError as exc:
                raise _fail(f"{source}: cannot read ({exc.strerror})", 2) from None
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
        raise _fail(f"{name}: cannot read ({exc.strerror})", 2) from None
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
        raise _fail(f"{path}: is a directory; give the register's CSV file (e.g. {path / 'seed.csv'})", 2)
    rules = _rules(config)
    if not path.is_file():
        raise _fail(f"{path}: no such file", 2)
    try:
        lines = count_lines(path) or 0
        with WorkProgress(f"register import {path}", lines, unit="rows") as bar, _engine(db) as engine:
            with session_scope(engine) as session:  # one transaction: Ctrl-C rolls it all back
                summary = import_register_csv(session, path, rules)
            bar.update(lines, summary.added + summary.updated + summary.unchanged, len(summary.errors))
    except KeyboardInterrupt:
        raise _fail(f"{path}: interrupted: nothing imported (run the same command again)", INTERRUPTED_EXIT) from None
    except OSError as exc:
        raise _fail(f"{path}: cannot read ({exc.strerror})", 2) from None
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
    with _read(db) as (engine, _):
        try:
            with session_scope(engine) as session:
                action(session)
        except review.ReviewError as exc:
            raise _fail(str(exc)) from None


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
        raise _fail("give --serial and/or --model", 2)
    rules = _rules(config)
    if model is not None:
        model = _filter(lambda: canonical_model(rules, model or ""))
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


# --- reports ---------------------------------------------------------------------------------------------


def _filter(action: Callable[[], str]) -> str:
    try:
        return action()
    except FilterError as exc:
        raise _fail(str(exc), 2) from None


def queue(
    code: Annotated[str | None, typer.Option(help=f"Only this flag code ({', '.join(ALL_FLAG_CODES)}).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model (any name or alias: MS-20, ms20).")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Open flags waiting for a reviewer, newest first.

    Example: korgwatch queue --code serial_outside_blocks --model ms20 --format json
    """
    if code is not None:
        code = _filter(lambda: flag_code(code or ""))
    if model is not None:
        rules = _rules(config)
        model = _filter(lambda: canonical_model(rules, model or ""))
    with _read(db) as (engine, store), read_scope(engine) as session:
        rows = [
            item.to_dict() for item in queries.review_queue(session, code=code, model=model, source=source)
        ]
    columns = ["flag_id", "created_at", "code", "model", "serial", "message", "suggestions", "source", "url"]
    emit(rows, fmt.value, columns, title="review queue", store=store.describe())


def history(
    serial: Annotated[str, typer.Argument(help="The serial number.")],
    model: Annotated[
        str | None, typer.Option(help="Only this model (any name or alias; serials can repeat between models).")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Every appearance of a serial, oldest first; `unit` tells apart different units with the same serial.

    Example: korgwatch history 134458 --model ms10
    """
    if model is not None:
        rules = _rules(config)
        model = _filter(lambda: canonical_model(rules, model or ""))
    with _read(db) as (engine, store), read_scope(engine) as session:
        rows = [item.to_dict() for item in queries.history(session, serial, model)]
    columns = ["seen_at", "model", "serial", "unit", "kind", "status", "source", "seller", "price", "currency", "url"]
    emit(rows, fmt.value, columns, title=f"history of {serial}", store=store.describe())


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option}: {text!r} is not a date (YYYY-MM-DD)", 2) from None


def export(
    since: Annotated[str, typer.Option(help="First day (YYYY-MM-DD) of first sightings to include.")],
    until: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD), inclusive.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ExportFormat.markdown,
) -> None:
    """Newly seen serials (not in the register, none awaiting review), grouped by model, ready to paste.

    Example: korgwatch export --since 2026-01-01 --format markdown
    """
    start = _date(since, "--since")
    end = _date(until, "--until") if until else None
    if end is not None and end < start:
        raise _fail(f"--since {start} is after --until {end}: nothing could match", 2)
    if fmt == ExportFormat.atom:
        from korgwatch.commands.feed import write_sightings_feed

        write_sightings_feed(db, start, end)
        return
    rules = _rules(config) if fmt == ExportFormat.markdown else None
    with _read(db) as (engine, store), read_scope(engine) as session:
        rows = queries.new_serials(session, start, end)
    if fmt == ExportFormat.markdown:
        if not rows and sys.stdout.isatty():
            nothing_found("new serials", store.describe())
            return
        typer.echo(queries.new_serials_markdown(rows, rules), nl=False)
        return
    emit(
        [r.to_dict() for r in rows],
        fmt.value,
        ["model", "serial", "first_seen", "source", "url"],
        title="new serials",
        store=store.describe(),
    )


def stats(db: DbOption = None, config: ConfigOption = None, fmt: FormatOption = Format.table) -> None:
    """Per model and number block: units seen, lowest/highest serial, and an ESTIMATE of units made.

    The estimate is the German tank estimator m + m/k − 1 over offsets within the block (m the highest
    offset, k the distinct serials seen), with its 90 % interval m .. m·0.1^(−1/k); below three distinct
    serials a block says "too few sightings". It assumes serials are issued in sequence and sampled at random.
    Example: korgwatch stats --format csv
    """
    rules = _rules(config)
    with _read(db) as (engine, store), read_scope(engine) as session:
        blocks = queries.stats(session, rules)
    per_model: dict[str, int] = {}
    for block in blocks:
        per_model[block.model] = per_model.get(block.model, 0) + block.units
    rows = []
    for block in blocks:
        row = block.to_dict()
        row["production_estimate"] = row.pop("estimate")
        row["model_units"] = per_model[block.model]
        rows.append(row)
    machine = ["production_estimate", "estimate_low", "estimate_high", "estimate_serials"]
    columns = ["model", "model_units", "block", "units", "lowest", "highest"]
    emit(
        rows,
        fmt.value,
        columns + (["estimate_text"] if fmt == Format.table else machine),
        title="units seen (estimate of units made: German tank m + m/k − 1, 90 % interval)",
        store=store.describe(),
    )


def register(app: typer.Typer) -> None:
    """Attach the storage commands to the main app."""
    app.add_typer(db_app, name="db")
    app.add_typer(register_app, name="register")
    app.add_typer(review_app, name="review")
    app.command("ingest")(ingest)
    app.command("queue")(queue)
    app.command("history")(history)
    app.command("export")(export)
    app.command("stats")(stats)
