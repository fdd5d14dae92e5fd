"""Read commands: `queue`, `history`, `export`, `stats`. Thin callers of `db/queries.py` on an existing store.

They start fast and stay flat on a large store: nothing of the analyser, the ingest, Alembic or Scrapy is
imported unless the command needs it (the rules only for `--model`, `stats` and the markdown export), each
makes a fixed number of queries, and `queue` prints a page (or streams every row with `--all`) instead of
building the whole queue in memory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from db import queries
from db.engine import read_scope
from korgwatch.commands.common import ConfigOption, checked, fail, reading, rules_of
from korgwatch.output import Format, FormatOption, emit, emit_pages, nothing_found
from korgwatch.store import DbOption
from pipeline.results import ALL_FLAG_CODES

QUEUE_LIMIT = 50  # flags `korgwatch queue` shows unless told otherwise


class ExportFormat(StrEnum):
    markdown = "markdown"
    table = "table"
    json = "json"
    csv = "csv"
    atom = "atom"  # the review server's new-sightings feed, for a static site (review/feeds.py)


class FirstRows:
    """The pages of a stream cut after `limit` rows, remembering whether more were there and the last row."""

    def __init__(self, pages: Iterable[list[queries.QueueItem]], limit: int | None) -> None:
        self._pages = pages
        self._limit = limit
        self.more = False
        self.last: queries.QueueItem | None = None

    def __iter__(self) -> Iterator[list[queries.QueueItem]]:
        left = self._limit
        for page in self._pages:
            if left is not None and len(page) > left:
                self.more, page = True, page[:left]
            if page:
                self.last = page[-1]
                yield page
            if left is not None:
                left -= len(page)
                if self.more:
                    return


def queue(
    code: Annotated[str | None, typer.Option(help=f"Only this flag code ({', '.join(ALL_FLAG_CODES)}).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model (any name or alias: MS-20, ms20).")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help=f"Show at most N flags (default {QUEUE_LIMIT}).")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every open flag, printed page by page as it is read (constant memory).")
    ] = False,
    after: Annotated[
        int | None,
        typer.Option(help="Start after this flag (the last one shown): the next page of the queue."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Open flags waiting for a reviewer, newest first: the first 50 unless --limit N or --all.

    Example: korgwatch queue --code serial_outside_blocks --model ms20 --format json
    """
    if every and limit is not None:
        raise fail("--all and --limit: give one of them", 2)
    if code is not None:
        from korgwatch.filters import flag_code

        code = checked(lambda: flag_code(code or ""))
    if model is not None:
        model = _model(model, config)
    cap = None if every else (limit or QUEUE_LIMIT)
    columns = ["flag_id", "created_at", "code", "model", "serial", "message", "suggestions", "source", "url"]
    with reading(db) as (engine, store), read_scope(engine) as session:
        if after is not None and not queries.flag_exists(session, after):
            raise fail(f"--after: no flag {after} in {store.shown}", 2)
        pages = FirstRows(
            queries.iter_review_queue(
                session, code=code, model=model, source=source, after=after,
                limit=None if cap is None else cap + 1,
            ),
            cap,
        )  # fmt: skip
        emit_pages(
            ([item.to_dict() for item in page] for page in pages),
            fmt.value,
            columns,
            title="review queue",
            store=store.describe(),
            lines=every,  # thousands of rows: aligned lines, not Rich tables (milliseconds a row)
        )
    if pages.more and pages.last is not None:
        typer.echo(
            f"more open flags: the same command with --after {pages.last.flag_id} shows the next page "
            "(--limit N more at once, --all every one)",
            err=True,
        )


def _model(text: str, config: Path | None) -> str:
    """The canonical name of the model a --model names (loads the rules: only a command given --model does)."""
    from korgwatch.filters import canonical_model

    known = rules_of(config)
    return checked(lambda: canonical_model(known, text))


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
        model = _model(model, config)
    with reading(db) as (engine, store), read_scope(engine) as session:
        rows = [item.to_dict() for item in queries.history(session, serial, model)]
    columns = ["seen_at", "model", "serial", "unit", "kind", "status", "source", "seller", "price", "currency", "url"]
    emit(rows, fmt.value, columns, title=f"history of {serial}", store=store.describe())


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option}: {text!r} is not a date (YYYY-MM-DD)", 2) from None


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
        raise fail(f"--since {start} is after --until {end}: nothing could match", 2)
    if fmt == ExportFormat.atom:
        from korgwatch.commands.feed import write_sightings_feed

        write_sightings_feed(db, start, end)
        return
    known = rules_of(config) if fmt == ExportFormat.markdown else None
    with reading(db) as (engine, store), read_scope(engine) as session:
        rows = queries.new_serials(session, start, end)
    if fmt == ExportFormat.markdown:
        if not rows and sys.stdout.isatty():
            nothing_found("new serials", store.describe())
            return
        typer.echo(queries.new_serials_markdown(rows, known), nl=False)
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
    known = rules_of(config)
    with reading(db) as (engine, store), read_scope(engine) as session:
        blocks = queries.stats(session, known)
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
    """Attach the read commands to the main app."""
    app.command("queue")(queue)
    app.command("history")(history)
    app.command("export")(export)
    app.command("stats")(stats)
