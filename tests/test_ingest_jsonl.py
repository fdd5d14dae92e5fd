"""ingest_jsonl: bad lines named by number, one transaction per batch, a refused record isolated from its batch."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from fixtures.storage.helpers import NOW, RecordFactory
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.ingest import IngestSummary, ingest_jsonl, ingest_stored
from db.models import Appearance, Listing, Source
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]


def _jsonl(*items: Any) -> str:
    return "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items)


def _count(engine: Engine, entity: Any) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(entity)) or 0


def test_bad_lines_are_reported_with_numbers(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    path = tmp_path / "listings.jsonl"
    path.write_text(
        _jsonl(
            make_record(title="Korg MS-10 s/n 134458"),
            "{not json",
            make_record(url=""),
            "",
            make_record(title=None),
            make_record(images="https://img/1.jpg"),
            make_record(posted_at="yesterday"),
            [1, 2],
            make_record(title="Korg MS-20 s/n 142817"),
        ),
        encoding="utf-8",
    )
    summary = ingest_jsonl(path, engine, rules, batch_size=2, now=NOW)
    assert summary.listings_new == 2
    assert summary.instruments_new == 2
    assert [e.split(":")[0] for e in summary.errors] == [
        "line 2",
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
    ]
    assert summary.errors[1] == "line 3: no url"
    assert summary.errors[3] == "line 6: images must be a list of URL strings"
    assert _count(engine, Listing) == 2


def test_database_error_costs_only_the_refused_record(
    engine: Engine, rules: Rules, make_record: RecordFactory
) -> None:
    """The third batch breaks a NOT NULL constraint after its listings were written: it is split, its good
    listing is stored and only BOOM's line is reported."""

    def ingest_then_fail_on_boom(session: Session, batch: list, rules: Rules, **kwargs: Any) -> IngestSummary:
        summary = ingest_stored(session, batch, rules, **kwargs)
        if any(record.title == "BOOM" for _, record in batch):
            session.execute(insert(Source), [{"name": None}])
        return summary

    lines = [make_record(title=f"Korg MS-10 s/n {134400 + i}") for i in range(4)]
    lines += [make_record(title="Korg MS-10 s/n 134499"), make_record(title="BOOM")]
    lines += [make_record(title="Korg MS-20 s/n 142817")]
    summary = ingest_jsonl(
        io.StringIO(_jsonl(*lines)), engine, rules, batch_size=2, now=NOW, ingest=ingest_then_fail_on_boom
    )
    assert summary.batches_failed == 0
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith("line 6: refused by the database (")
    assert summary.errors[0].endswith("); not stored")
    assert summary.listings_new == 6
    assert _count(engine, Listing) == 6
    assert _count(engine, Appearance) == 6
    with session_scope(engine) as session:
        titles = set(session.scalars(select(Listing.title)))
    assert "BOOM" not in titles and "Korg MS-10 s/n 134499" in titles


def test_reingest_file_is_idempotent(engine: Engine, rules: Rules, make_record: RecordFactory) -> None:
    text = _jsonl(*(make_record(title=f"Korg MS-10 s/n {134400 + i}") for i in range(5)))
    first = ingest_jsonl(io.StringIO(text), engine, rules, batch_size=3, now=NOW)
    second = ingest_jsonl(io.StringIO(text), engine, rules, batch_size=3, now=NOW)
    assert (first.listings_new, first.instruments_new) == (5, 5)
    assert (second.listings_new, second.listings_unchanged, second.instruments_new) == (0, 5, 0)
