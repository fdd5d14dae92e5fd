"""Notifications end to end: listings stored by ingest and crawl runs in a real SQLite file, messages delivered
by Apprise over real HTTP to a loopback sink, and counted there."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fixtures.notify.sink import Sink
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from db.models import CrawlRun, Notification
from db.run_ledger import close_runs, open_run
from korgwatch.cli import app
from korgwatch.notify.config import NotifyConfig, NotifyConfigError, load_notify
from korgwatch.notify.events import collect
from korgwatch.notify.sender import notify_once, send_pending
from pipeline.rules import Rules

SERIALS = ("144571", "145210", "146002", "147333", "148801")


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as running:
        yield running


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    upgrade_engine(engine)
    yield engine
    engine.dispose()


def write_config(tmp_path: Path, text: str) -> NotifyConfig:
    path = tmp_path / "notify.yaml"
    path.write_text(text, encoding="utf-8")
    return load_notify(path)


def listing(n: int, serial: str, source: str = "reverb", model: str = "MS-20", price: str = "900") -> dict[str, Any]:
    return {
        "source": source,
        "url": f"https://{source}.example/item/{n}",
        "title": f"Korg {model} synthesizer, serial {serial}",
        "body": "Works well.",
        "seller": f"seller{n}",
        "price": price,
        "currency": "EUR",
    }


def store(engine: Engine, rules: Rules, records: list[dict[str, Any]]) -> None:
    with session_scope(engine) as session:
        summary = ingest_records(session, records, rules)
    assert summary.errors == []


def crawl(engine: Engine, rules: Rules, source: str, records: list[dict[str, Any]], pages: int = 2) -> int:
    """A crawl run as the crawler leaves it: opened, listings stored during it, closed with its outcome."""
    with session_scope(engine) as session:
        run_id = open_run(session, source, datetime.now(UTC) - timedelta(seconds=1))
    if records:
        store(engine, rules, records)
    with session_scope(engine) as session:
        session.get(CrawlRun, run_id).pages = pages  # type: ignore[union-attr]
        close_runs(session, [run_id], datetime.now(UTC) + timedelta(seconds=1))
    return run_id


def start(engine: Engine, config: NotifyConfig) -> None:
    """The first collection: notifications start from now (the history is not sent)."""
    with session_scope(engine) as session:
        collect(session, config)


def test_one_digest_per_crawl_run_lists_every_new_sighting(
    engine: Engine, rules: Rules, sink: Sink, tmp_path: Path
) -> None:
    config = write_config(tmp_path, f'targets:\n  - url: "{sink.url}"\npublic_base_url: "https://korg.example.org"\n')
    store(engine, rules, [listing(99, "143999", source="ebay")])  # before notifications: not sent
    start(engine, config)
    crawl(engine, rules, "reverb", [listing(n, s) for n, s in enumerate(SERIALS)])
    queued, report = notify_once(engine, config)
    assert (queued, report.delivered, report.failed) == (1, 1, 0)
    assert len(sink.messages) == 1
    message = sink.messages[0]["message"]
    assert all(f"MS-20 {serial}" in message for serial in SERIALS)
    assert "143999" not in message
    assert "https://korg.example.org/listing/" in message
    assert "reverb run" in sink.messages[0]["title"]
    assert notify_once(engine, config)[1].delivered == 0  # nothing twice
    assert len(sink.messages) == 1


def test_digest_waits_for_the_run_to_close(engine: Engine, rules: Rules, sink: Sink, tmp_path: Path) -> None:
    config = write_config(tmp_path, f'targets:\n  - url: "{sink.url}"\n')
    start(engine, config)
    with session_scope(engine) as session:
        run_id = open_run(session, "reverb", datetime.now(UTC) - timedelta(seconds=1))
    store(engine, rules, [listing(1, SERIALS[0])])
    notify_once(engine, config)
    assert sink.messages == []
    with session_scope(engine) as session:
        session.get(CrawlRun, run_id).pages = 1  # type: ignore[union-attr]
        close_runs(session, [run_id], datetime.now(UTC) + timedelta(seconds=1))
    notify_once(engine, config)
    assert len(sink.messages) == 1 and SERIALS[0] in sink.messages[0]["message"]


def test_rules_filter_by_model_source_price_and_flag(engine: Engine, rules: Rules, sink: Sink, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'targets:\n  - name: hook\n    url: "{sink.url}"\n'
        "rules:\n"
        "  - events: [new_sighting]\n    models: [MS-20]\n    sources: [reverb]\n    price_max: 1000\n"
        "    digest: none\n"
        "  - events: [flag_opened]\n    flags: [serial_outside_blocks]\n    digest: none\n",
    )
    start(engine, config)
    store(
        engine,
        rules,
        [
            listing(1, "144571"),  # passes
            listing(2, "145210", price="1500"),  # too dear
            listing(3, "146002", source="ebay"),  # other source
            listing(4, "730144"),  # an MS-20 title with a Poly-61 serial: a flag, no counted sighting
        ],
    )
    notify_once(engine, config)
    titles = sorted(m["title"] for m in sink.messages)
    assert titles == ["korgwatch: flag opened: MS-20 730144", "korgwatch: new sighting: MS-20 144571"]


def test_failed_crawl_is_told_at_once(engine: Engine, rules: Rules, sink: Sink, tmp_path: Path) -> None:
    config = write_config(tmp_path, f'targets:\n  - url: "{sink.url}"\n')
    start(engine, config)
    run_id = crawl(engine, rules, "matrixsynth", [], pages=0)
    notify_once(engine, config)
    titles = [m["title"] for m in sink.messages]
    assert "korgwatch: crawl failed" in titles
    assert any(f"crawl run {run_id} failed" in m["message"] for m in sink.messages)


def test_review_backlog_told_once_when_the_queue_reaches_the_threshold(
    engine: Engine, rules: Rules, sink: Sink, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        f'targets:\n  - url: "{sink.url}"\nreview_backlog: 2\nrules:\n  - events: [review_backlog]\n',
    )
    start(engine, config)
    store(engine, rules, [listing(1, "730144")])
    notify_once(engine, config)
    assert sink.messages == []  # one open flag: under the threshold
    store(engine, rules, [listing(2, "730155"), listing(3, "730166")])
    notify_once(engine, config)
    notify_once(engine, config)
    assert [m["title"] for m in sink.messages] == ["korgwatch: review backlog"]
    assert "3 open flags" in sink.messages[0]["message"]


def test_failing_target_is_retried_with_backoff_shown_in_status_and_not_lost(
    engine: Engine,
    rules: Rules,
    sink: Sink,
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HOOK_TOKEN", "s3cr3t-t0ken")
    config = write_config(
        tmp_path,
        f'targets:\n  - name: hook\n    url: "{sink.url}/${{HOOK_TOKEN}}"\n'
        "rules:\n  - events: [new_sighting]\n    digest: none\nretry:\n  first: 0.5s\n  max: 1s\n",
    )
    start(engine, config)
    store(engine, rules, [listing(1, SERIALS[0])])
    sink.fail = True
    _, report = notify_once(engine, config)
    assert (report.delivered, report.failed) == (0, 1)
    with session_scope(engine) as session:
        row = session.scalars(select(Notification)).one()
        assert row.status == "pending" and row.attempts == 1
        assert row.next_attempt_at > row.created_at  # backoff, not an immediate retry
        assert "s3cr3t-t0ken" not in (row.last_error or "")
    assert send_pending(engine, config).failed == 0  # not due yet: nothing tried

    result = CliRunner().invoke(app, ["status", "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "Notifications waiting" in result.output and "hook" in result.output
    assert "s3cr3t-t0ken" not in result.output and "error=500" in result.output
    assert "s3cr3t-t0ken" not in caplog.text  # Apprise's own log lines do not reach korgwatch's logs

    sink.fail = False
    deadline = time.monotonic() + 30
    while not sink.messages and time.monotonic() < deadline:
        send_pending(engine, config)
        time.sleep(0.1)
    assert len(sink.messages) == 1 and SERIALS[0] in sink.messages[0]["title"]
    with session_scope(engine) as session:
        assert session.scalars(select(Notification.status)).all() == ["delivered"]


def test_notify_list_shows_deliveries_and_failures(
    engine: Engine, rules: Rules, sink: Sink, tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(
        tmp_path,
        f'targets:\n  - name: hook\n    url: "{sink.url}"\nrules:\n  - events: [new_sighting]\n    digest: none\n',
    )
    start(engine, config)
    store(engine, rules, [listing(1, SERIALS[0])])
    notify_once(engine, config)
    sink.fail = True
    store(engine, rules, [listing(2, SERIALS[1])])
    notify_once(engine, config)
    rows = json.loads(CliRunner().invoke(app, ["notify", "list", "--db", sqlite_url, "-f", "json"]).output)
    by_status = {row["status"]: row for row in rows}
    assert SERIALS[0] in by_status["delivered"]["title"]
    assert SERIALS[1] in by_status["failing"]["title"] and by_status["failing"]["error"]
    csv_out = CliRunner().invoke(app, ["notify", "list", "--db", sqlite_url, "-f", "csv", "--failing"]).output
    lines = csv_out.strip().splitlines()
    assert lines[0].startswith("id,created,target") and len(lines) == 2 and SERIALS[1] in lines[1]


def test_notify_test_sends_to_the_named_target(sink: Sink, tmp_path: Path) -> None:
    write_config(tmp_path, f'targets:\n  - name: hook\n    url: "{sink.url}"\n')
    path = str(tmp_path / "notify.yaml")
    result = CliRunner().invoke(app, ["notify", "test", "hook", "--notify-config", path])
    assert result.exit_code == 0, result.output
    assert [m["title"] for m in sink.messages] == ["korgwatch: test message"]
    missing = CliRunner().invoke(app, ["notify", "test", "phone", "--notify-config", path])
    assert missing.exit_code == 2 and "no target named 'phone'" in missing.output


def test_a_flagged_first_sighting_is_told_after_review_even_when_its_run_digest_went(
    engine: Engine, rules: Rules, sink: Sink, tmp_path: Path
) -> None:
    from db.models import Flag
    from db.review import confirm

    config = write_config(tmp_path, f'targets:\n  - url: "{sink.url}"\nrules:\n  - events: [new_sighting]\n')
    start(engine, config)
    crawl(engine, rules, "reverb", [listing(1, "144571"), listing(2, "730144")])  # 730144: flagged, not counted
    notify_once(engine, config)
    assert len(sink.messages) == 1 and "144571" in sink.messages[0]["message"]
    assert "730144" not in sink.messages[0]["message"]
    with session_scope(engine) as session:
        flag_id = session.scalars(select(Flag.id)).one()
        confirm(session, flag_id, "keeper", "the plate says so")
    notify_once(engine, config)
    assert len(sink.messages) == 2 and "MS-20 730144" in sink.messages[1]["message"]
    notify_once(engine, config)
    assert len(sink.messages) == 2


def test_a_unit_sold_again_names_the_earlier_appearance_and_its_price(
    engine: Engine, rules: Rules, sink: Sink, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, f'targets:\n  - url: "{sink.url}"\nrules:\n  - events: [duplicate_sale, repost]\n    digest: none\n'
    )
    store(engine, rules, [{**listing(1, "144571", price="700"), "posted_at": "2025-01-10T10:00:00Z"}])
    start(engine, config)
    store(engine, rules, [{**listing(2, "144571", source="ebay", price="1200"), "posted_at": "2026-06-01T10:00:00Z"}])
    notify_once(engine, config)
    assert [m["title"] for m in sink.messages] == ["korgwatch: duplicate sale: MS-20 144571"]
    message = sink.messages[0]["message"]
    assert "https://ebay.example/item/2" in message
    assert "earlier: https://reverb.example/item/1 (2025-01-10, 700.00 EUR)" in message


def test_an_interval_digest_goes_at_most_once_per_interval(
    engine: Engine, rules: Rules, sink: Sink, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        f'targets:\n  - url: "{sink.url}"\nrules:\n  - events: [new_sighting, watch_hit]\n    digest: interval\n'
        "    every: 1h\n",
    )
    t0 = datetime.now(UTC) - timedelta(hours=2)  # the passes' clock, in the past so their messages are due
    with session_scope(engine) as session:
        collect(session, config, now=t0)  # notifications start here
    store(engine, rules, [listing(1, SERIALS[0]), listing(2, SERIALS[1])])
    with session_scope(engine) as session:
        assert collect(session, config, now=t0 + timedelta(seconds=1)).messages == 1  # the first at once
    send_pending(engine, config)
    store(engine, rules, [listing(3, SERIALS[2])])
    with session_scope(engine) as session:
        assert collect(session, config, now=t0 + timedelta(minutes=10)).messages == 0  # within the hour: waits
    with session_scope(engine) as session:
        assert collect(session, config, now=t0 + timedelta(minutes=61)).messages == 1
    send_pending(engine, config)
    first, second = (m["message"] for m in sink.messages)
    assert SERIALS[0] in first and SERIALS[1] in first and SERIALS[2] not in first
    assert SERIALS[2] in second and SERIALS[0] not in second
    with session_scope(engine) as session:
        assert collect(session, config, now=t0 + timedelta(hours=3)).messages == 0  # nothing new: nothing sent


def test_an_interval_digest_needs_its_interval(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text('targets:\n  - url: "json://127.0.0.1:9/x"\nrules:\n  - events: [new_sighting]\n'
                    "    digest: interval\n", encoding="utf-8")
    with pytest.raises(NotifyConfigError, match=r"notify\.yaml:5.*needs `every:`"):
        load_notify(path)
    path.write_text('targets:\n  - url: "json://127.0.0.1:9/x"\nrules:\n  - events: [new_sighting]\n'
                    "    digest: interval\n    every: soon\n", encoding="utf-8")
    with pytest.raises(NotifyConfigError, match=r"every: expected a duration such as 30m, 1h or 1d"):
        load_notify(path)
