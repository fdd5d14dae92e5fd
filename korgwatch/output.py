"""How every listing command prints rows: a Rich table (titled with the store it read), JSON or CSV.

One module so that `queue`, `runs`, `status`, `schedule list` and the rest take the same `-f/--format` and
print an empty result the same way.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
NOTHING_FOUND = "nothing found"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # never sent to a terminal from scraped text
LINE_COLUMN_MAX = 60  # widest column of `lines` output before a value is cut with "…"


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
    return Table(title=Text(text) if text else None, min_width=len(text) + 2 if text else None)


def text_cell(value: Any) -> Text:
    """A table cell shown as it is: scraped text is never read as Rich markup ("[/b]" would even fail), and
    its control characters (a terminal's escape sequences) are shown as spaces."""
    return Text(CONTROL.sub(" ", cell(value)))


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
            table.add_row(*(text_cell(row.get(c)) for c in columns))
        Console(width=200).print(table)


class Lines:
    """Rows as aligned plain lines, a header first: a table that streams (a Rich table takes milliseconds a row).

    Column widths come from the first rows (at most LINE_COLUMN_MAX; longer values are cut with "…"), the last
    column is never cut; control characters become spaces.
    """

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.widths: list[int] | None = None

    @staticmethod
    def _plain(value: Any) -> str:
        return CONTROL.sub(" ", cell(value))

    def _line(self, values: Sequence[str]) -> str:
        assert self.widths is not None
        cut = [v if len(v) <= w else v[: w - 1] + "…" for v, w in zip(values[:-1], self.widths, strict=False)]
        return "  ".join([*(v.ljust(w) for v, w in zip(cut, self.widths, strict=False)), values[-1]]).rstrip()

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        texts = [[self._plain(row.get(c)) for c in self.columns] for row in rows]
        out = []
        if self.widths is None:
            self.widths = [
                min(LINE_COLUMN_MAX, max([len(c), *(len(t[i]) for t in texts)])) for i, c in enumerate(self.columns)
            ][:-1]
            out.append(self._line(self.columns))
        out += [self._line(t) for t in texts]
        typer.echo("\n".join(out))


def emit_pages(
    pages: Iterable[Sequence[dict[str, Any]]],
    fmt: str,
    columns: Sequence[str],
    title: str | None = None,
    store: str | None = None,
    *,
    lines: bool = False,
) -> int:
    """Print rows page by page as they arrive, holding one page at a time; return how many were printed.

    The output is the same as `emit` of all the rows would print, except that a table is one Rich table per
    page (the title says "continued" from the second on), or with `lines` plain aligned lines under one title
    (for many rows: fast to print, easy to page through): json is still one array, csv has one header row.
    """
    printed = 0
    console = Console(width=200)
    plain = Lines(columns) if lines and fmt not in ("json", "csv") else None
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
        elif plain is not None:
            if printed == 0:
                typer.echo(titled(title, store) or "")
            plain.write(page)
        else:
            shown = title if printed == 0 else f"{title or ''} (continued, from row {printed + 1})".strip()
            table = titled_table(shown, store)
            for column in columns:
                table.add_column(column)
            for row in page:
                table.add_row(*(text_cell(row.get(c)) for c in columns))
            console.print(table)
        printed += len(page)
    if fmt == "json":
        typer.echo("\n]" if printed else "[]")
    elif fmt != "csv" and printed == 0:
        nothing_found(title, store)
    return printed
