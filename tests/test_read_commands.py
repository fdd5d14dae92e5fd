"""Read commands stay flat as the store grows (issue 14, target 4): `export` and `history` make the same number
of queries whatever the result size, `queue` pages (first 50, --limit, keyset --after) or streams (--all).

Queries are counted by SQLAlchemy's `before_cursor_execute` on the real store (SQLite file, real PostgreSQL),
through the real `korgwatch` app; the store is grown between two runs of the same command.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fixtures.storage.helpers import NOW, Ingest, RecordFactory
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from db.engine import read_scope
from db.queries import iter_review_queue
from korgwatch.cli import app

pytest_plugins = ["fixtures.storage.builders"]

runner = CliRunner()
REPEATED = "140001"  # an MS-20 serial sold again and again: its history grows with the store


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """Every statement any engine sends to its database while the block runs."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def korgwatch(*args: str) -> Any:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def queries_of(*args: str) -> tuple[int, Any]:
    with counted_statements() as statements:
        result = korgwatch(*args)
    return len(statements), result


def grow(ingest: Ingest, make_record: RecordFactory, first: int, count: int) -> None:
    """`count` more listings: new MS-20 serials (counted), misread ones (flagged), and the repeated serial."""
    records = []
    for n in range(first, first + count):
        posted = (NOW - timedelta(days=400) + timedelta(hours=n)).isoformat()
        records.append(make_record(title=f"Korg MS-20 s/n 14{n + 2:04d}", posted_at=posted))
        records.append(make_record(title=f"Korg MS-20 s/n 73{n:04d}", posted_at=posted))  # fits Poly-61: a flag
        records.append(make_record(title=f"Korg MS-20 s/n {REPEATED}", posted_at=posted, seller=f"s{n}"))
    ingest(*records, now=NOW + timedelta(minutes=first))  # each growth its own flag time, ties within one


COMMANDS = {
    "export json": ("export", "--since", "2020-01-01", "-f", "json"),
    "export markdown": ("export", "--since", "2020-01-01"),
    "history": ("history", REPEATED, "-f", "json"),
    "history --model": ("history", REPEATED, "--model", "ms20", "-f", "json"),
    "queue": ("queue", "-f", "json"),
    "queue --all": ("queue", "--all", "-f", "json"),
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=list(COMMANDS))
def test_queries_do_not_grow_with_the_store(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory, command: tuple[str, ...]
) -> None:
    grow(ingest, make_record, 0, 3)
    small, small_result = queries_of(*command, "--db", db_url)
    grow(ingest, make_record, 3, 60)
    large, large_result = queries_of(*command, "--db", db_url)
    assert len(large_result.stdout) > len(small_result.stdout)  # the result did grow...
    assert large == small  # ...the number of queries did not


def test_export_finds_each_new_serial_with_its_first_listing(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    grow(ingest, make_record, 0, 40)
    rows = json.loads(korgwatch("export", "--since", "2020-01-01", "-f", "json", "--db", db_url).stdout)
    serials = [row["serial"] for row in rows]
    assert serials == sorted(serials) and len(serials) == len(set(serials))
    assert set(serials) == {REPEATED} | {f"14{n + 2:04d}" for n in range(40)}
    first_of_repeated = next(row for row in rows if row["serial"] == REPEATED)
    assert first_of_repeated["url"] == "https://reverb.com/item/3"  # its first listing, not a later sale


def page_ids(result: Any) -> list[int]:
    return [row["flag_id"] for row in json.loads(result.stdout)]


def test_queue_shows_the_first_fifty_and_says_how_to_go_on(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    grow(ingest, make_record, 0, 60)
    first = korgwatch("queue", "-f", "json", "--db", db_url)
    assert len(page_ids(first)) == 50
    assert f"--after {page_ids(first)[-1]}" in first.stderr
    every = korgwatch("queue", "--all", "-f", "json", "--db", db_url)
    assert len(page_ids(every)) == 60 and page_ids(every)[:50] == page_ids(first)
    assert "--after" not in every.stderr


def test_queue_pages_by_keyset_in_the_order_of_the_whole_queue(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    """Pages of 4 chained with --after cover the queue once, in order, across flags created at the same time."""
    for start in (0, 5, 10):
        grow(ingest, make_record, start, 5)
    whole = page_ids(korgwatch("queue", "--all", "-f", "json", "--db", db_url))
    assert len(whole) == 15
    seen: list[int] = []
    args: tuple[str, ...] = ("queue", "-n", "4", "-f", "json", "--db", db_url)
    while True:
        result = korgwatch(*args)
        seen += page_ids(result)
        if "--after" not in result.stderr:
            break
        args = ("queue", "-n", "4", "-f", "json", "--db", db_url, "--after", str(seen[-1]))
    assert seen == whole


def test_queue_streams_in_chunks_from_one_query(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    grow(ingest, make_record, 0, 7)
    with counted_statements() as statements, read_scope(engine) as session:
        chunks = [len(chunk) for chunk in iter_review_queue(session, chunk=3)]
    assert chunks == [3, 3, 1]
    assert [s.split()[0] for s in statements if not s.startswith("BEGIN")] == ["SELECT"]  # one query


def test_queue_all_as_csv_and_table_prints_every_row_once(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    grow(ingest, make_record, 0, 12)
    rows = list(csv.DictReader(io.StringIO(korgwatch("queue", "--all", "-f", "csv", "--db", db_url).stdout)))
    assert len(rows) == 12 and len({row["flag_id"] for row in rows}) == 12
    lines = korgwatch("queue", "--all", "--db", db_url).stdout.splitlines()
    assert lines[0].startswith("review queue — ") and lines[1].split()[:3] == ["flag_id", "created_at", "code"]
    assert [line.split()[0] for line in lines[2:]] == [row["flag_id"] for row in rows]  # one aligned line each


def test_queue_refuses_all_with_limit_and_an_unknown_after(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    grow(ingest, make_record, 0, 1)
    both = runner.invoke(app, ["queue", "--all", "--limit", "5", "--db", db_url])
    assert both.exit_code == 2 and "--all and --limit" in both.stderr
    unknown = runner.invoke(app, ["queue", "--after", "999999", "--db", db_url])
    assert unknown.exit_code == 2 and "--after: no flag 999999" in unknown.stderr


def test_an_empty_queue_is_still_valid_json_and_one_line_as_a_table(
    db_url: str, engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    ingest(make_record(title="Korg MS-20 s/n 140001"))  # counted: no flag
    assert json.loads(korgwatch("queue", "--all", "-f", "json", "--db", db_url).stdout) == []
    assert "nothing found" in korgwatch("queue", "--db", db_url).stdout
