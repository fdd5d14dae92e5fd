"""How every listing command prints rows: a Rich table (titled with the store it read), JSON or CSV.

One module so that `queue`, `runs`, `status`, `schedule list` and the rest take the same `-f/--format` and
print an empty result the same way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
NOTHING_FOUND = "nothing found"


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def titled(title: str | None, store: str | None) -> str | None:
    """The table title with the store it came from, so the reader knows which one they are looking at."""
    if store is None:
        return title
    return f"{title} — {store}" if title else store


def titled_table(title: str | None, store: str | None = None) -> Table:
    """A Rich table titled with the store, wide enough that the store's name is never cut."""
    text = titled(title, store)
    return Table(title=text, min_width=len(text) + 2 if text else None)


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    typer.echo(buffer.getvalue(), nl=False)


def write_json(rows: Sequence[dict[str, Any]]) -> None:
    typer.echo(json.dumps(list(rows), ensure_ascii=False, indent=2, default=str))


def _json_item(row: dict[str, Any]) -> str:
    """One element of an indented JSON array, as `json.dumps(rows, indent=2)` would print it."""
    return "\n".join("  " + line for line in json.dumps(row, ensure_ascii=False, indent=2, default=str).splitlines())


def nothing_found(title: str | None, store: str | None) -> None:
    """One line instead of an empty table."""
    where = f" in {store}" if store else ""
    typer.echo(f"{title}: {NOTHING_FOUND}{where}" if title else f"{NOTHING_FOUND}{where}")


def emit(
    rows: Sequence[dict[str, Any]],
    fmt: str,
    columns: Sequence[str],
    title: str | None = None,
    store: str | None = None,
) -> None:
    """Print rows in the chosen format; json is always one array, csv has a header row, an empty table is
    one "nothing found" line."""
    if fmt == "json":
        write_json(rows)
    elif fmt == "csv":
        write_csv(rows, columns)
    elif not rows:
        nothing_found(title, store)
    else:
        table = titled_table(title, store)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(cell(row.get(c)) for c in columns))
        Console(width=200).print(table)


def emit_pages(
    pages: Iterable[Sequence[dict[str, Any]]],
    fmt: str,
    columns: Sequence[str],
    title: str | None = None,
    store: str | None = None,
) -> int:
    """Print rows page by page as they arrive, holding one page at a time; return how many were printed.

    The output is the same as `emit` of all the rows would print, except that a table is one Rich table per
    page (the title says "continued" from the second on): json is still one array, csv has one header row.
    """
    printed = 0
    console = Console(width=200)
    if fmt == "csv":
        write_csv([], columns)
    for page in pages:
        if not page:
            continue
        if fmt == "json":
            items = ",\n".join(_json_item(row) for row in page)
            typer.echo(("[\n" if printed == 0 else ",\n") + items, nl=False)
        elif fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerows([cell(row.get(c)) for c in columns] for row in page)
            typer.echo(buffer.getvalue(), nl=False)
        else:
            shown = title if printed == 0 else f"{title or ''} (continued, from row {printed + 1})".strip()
            table = titled_table(shown, store)
            for column in columns:
                table.add_column(column)
            for row in page:
                table.add_row(*(cell(row.get(c)) for c in columns))
            console.print(table)
        printed += len(page)
    if fmt == "json":
        typer.echo("\n]" if printed else "[]")
    elif fmt != "csv" and printed == 0:
        nothing_found(title, store)
    return printed
