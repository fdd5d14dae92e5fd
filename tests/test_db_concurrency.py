"""Two writers ingesting the same serial at once: exactly one `new`, nothing lost (the schema decides)."""

from __future__ import annotations

import threading
from typing import Any

from fixtures.storage.helpers import RecordFactory, appearances_of
from sqlalchemy import Engine

from db.engine import session_scope
from db.ingest import IngestSummary, ingest_records
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]


def test_concurrent_writers_agree_on_the_first_sighting(
    engine: Engine, rules: Rules, make_record: RecordFactory
) -> None:
    batches = [
        [make_record(title="Korg MS-10 s/n 135041", source=f"source{w}", seller=f"s{w}-{i}") for i in range(5)]
        for w in range(4)
    ]
    start = threading.Barrier(len(batches))
    results: list[IngestSummary] = []
    errors: list[BaseException] = []

    def write(records: list[dict[str, Any]]) -> None:
        start.wait()
        try:
            for attempt in range(3):  # what ingest_jsonl does: a unique-key clash is retried
                try:
                    with session_scope(engine) as session:
                        results.append(ingest_records(session, records, rules))
                    return
                except Exception:
                    if attempt == 2:
                        raise
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(r.listings_new for r in results) == 20
    with session_scope(engine) as session:
        kinds = [a.kind for a in appearances_of(session, "MS-10", "135041")]
    assert len(kinds) == 20
    assert kinds.count("new") == 1
