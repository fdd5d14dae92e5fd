"""Exactly once, proved by killing: the notifier is killed (SIGKILL) between sending a message and recording it,
restarted, and the messages the loopback sink received are counted; two notifiers on one PostgreSQL store send
each message once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.notify.sink import Sink
from sqlalchemy import select

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from db.models import Notification
from korgwatch.notify.config import load_notify
from korgwatch.notify.events import collect
from korgwatch.notify.sender import PAUSE_AFTER_SEND_ENV
from pipeline.rules import Rules

KORGWATCH = str(Path(sys.executable).parent / "korgwatch")


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as running:
        yield running


def prepare(db_url: str, rules: Rules, tmp_path: Path, sink: Sink, serials: list[str]) -> Path:
    """A store with one message queued per new sighting (digest: none), and its notify file."""
    path = tmp_path / "notify.yaml"
    path.write_text(
        f'targets:\n  - name: hook\n    url: "{sink.url}"\nrules:\n  - events: [new_sighting]\n    digest: none\n',
        encoding="utf-8",
    )
    config = load_notify(path)
    engine = make_engine(db_url)
    try:
        upgrade_engine(engine)
        with session_scope(engine) as session:
            collect(session, config, datetime.now(UTC))  # notifications start here
        records = [
            {"source": "reverb", "url": f"https://reverb.example/{n}", "title": f"Korg MS-20 serial {serial}"}
            for n, serial in enumerate(serials)
        ]
        with session_scope(engine) as session:
            assert ingest_records(session, records, rules).errors == []
        with session_scope(engine) as session:
            assert collect(session, config).messages == len(serials)
    finally:
        engine.dispose()
    return path


def notifier(db_url: str, config: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [KORGWATCH, "notify", "run", "--db", db_url, "--notify-config", str(config)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def delivered(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            return list(session.scalars(select(Notification.status).order_by(Notification.id)))
    finally:
        engine.dispose()


def test_kill_between_send_and_record_repeats_that_one_message_only(
    db_url: str, rules: Rules, tmp_path: Path, sink: Sink
) -> None:
    serials = ["144571", "145210", "146002"]
    config = prepare(db_url, rules, tmp_path, sink, serials)
    first = notifier(db_url, config, **{PAUSE_AFTER_SEND_ENV: "120"})
    assert first.stderr is not None
    line = first.stderr.readline()  # printed after the first send, before its record
    assert "sent message" in line, line + first.stderr.read()
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert len(sink.messages) == 1
    sent_before_kill = sink.messages[0]["title"]
    assert delivered(db_url) == ["pending"] * 3  # the send was never recorded

    second = notifier(db_url, config)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    counts = Counter(m["title"] for m in sink.messages)
    assert counts == Counter({f"korgwatch: new sighting: MS-20 {s}": 1 for s in serials}) + Counter([sent_before_kill])
    assert delivered(db_url) == ["delivered"] * 3

    third = notifier(db_url, config)  # a restart after everything was recorded sends nothing
    third.communicate(timeout=120)
    assert len(sink.messages) == 4


@pytest.mark.postgres
def test_two_notifiers_on_one_postgres_store_send_each_message_once(
    postgres_url: str, rules: Rules, tmp_path: Path, sink: Sink
) -> None:
    serials = [f"14{n:04d}" for n in range(30)]
    config = prepare(postgres_url, rules, tmp_path, sink, serials)
    pair = [notifier(postgres_url, config), notifier(postgres_url, config)]
    for process in pair:
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
    counts = Counter(m["title"] for m in sink.messages)
    assert counts == Counter({f"korgwatch: new sighting: MS-20 {s}": 1 for s in serials})
    assert delivered(postgres_url) == ["delivered"] * len(serials)
