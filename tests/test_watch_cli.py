"""Watchlists: `korgwatch watch add|list|remove|import`, and `watch_hit` sent at once (not in the run's digest)
when a listing shows a watched serial, a serial one edit from it, a serial in a watched range, a watched model,
or the watched serial anywhere in its text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.notify.sink import Sink
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from db.models import CrawlRun
from db.run_ledger import close_runs, open_run
from db.watches import one_edit
from korgwatch.cli import app
from korgwatch.notify.config import load_notify
from korgwatch.notify.events import collect
from korgwatch.notify.sender import notify_once
from pipeline.rules import Rules


def kw(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as running:
        yield running


def test_add_list_remove(sqlite_url: str) -> None:
    assert kw("watch", "add", "MS-20", "439057", "--note", "stolen 2024, police ref 77", "--db", sqlite_url)[0] == 0
    assert kw("watch", "add", "ms20", "146000-146999", "--db", sqlite_url)[0] == 0  # an alias is accepted
    assert kw("watch", "add", "Polysix", "--db", sqlite_url)[0] == 0  # the whole model
    code, out = kw("watch", "list", "--db", sqlite_url, "-f", "json")
    assert code == 0
    rows = json.loads(out)
    assert {(r["model"], r["serial"]) for r in rows} == {
        ("MS-20", "439057"),
        ("MS-20", "146000-146999"),
        ("PolySix", "*"),
    }
    assert any(r["note"] == "stolen 2024, police ref 77" for r in rows)
    assert kw("watch", "remove", "MS-20", "439057", "--db", sqlite_url)[0] == 0
    assert kw("watch", "remove", "MS-20", "439057", "--db", sqlite_url)[0] == 1
    assert len(json.loads(kw("watch", "list", "--db", sqlite_url, "-f", "json")[1])) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("MS-99", "1"), "unknown model 'MS-99'"),
        (("MS-20", "146999-146000"), "larger than the second"),
        (("MS-20", "14600-146999"), "same length"),
        (("MS-20", "14 6"), "letters and digits only"),
    ],
)
def test_bad_watch_is_refused_with_one_line_and_status_2(sqlite_url: str, args: tuple[str, str], message: str) -> None:
    code, out = kw("watch", "add", *args, "--db", sqlite_url)
    assert code == 2 and message in out and "Traceback" not in out


def test_import_csv_keeps_good_rows_and_names_bad_lines(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "stolen.csv"
    path.write_text(
        "model,serial,note\nMS-20,439057,stolen 2024\nMS-99,1,typo\nPolysix,,any\nMS-20,2-1,bad range\n",
        encoding="utf-8",
    )
    code, out = kw("watch", "import", str(path), "--db", sqlite_url)
    assert code == 1
    assert f"{path}:3: unknown model 'MS-99'" in out and f"{path}:5:" in out
    assert "imported 2 watches, 2 bad rows" in out
    rows = json.loads(kw("watch", "list", "--db", sqlite_url, "-f", "json")[1])
    assert {(r["model"], r["serial"]) for r in rows} == {("MS-20", "439057"), ("PolySix", "*")}


def test_one_edit() -> None:
    assert one_edit("439051", "439057") and one_edit("43905", "439057") and one_edit("4390577", "439057")
    assert not one_edit("439075", "439057") and not one_edit("439057", "439057")


def test_watch_hits_are_sent_at_once_and_not_in_the_digest(
    sqlite_url: str, rules: Rules, sink: Sink, tmp_path: Path
) -> None:
    for args in (("MS-20", "439057", "--note", "stolen 2024"), ("MS-20", "146000-146999"), ("Polysix",)):
        assert kw("watch", "add", *args, "--db", sqlite_url)[0] == 0
    path = tmp_path / "notify.yaml"
    path.write_text(f'targets:\n  - url: "{sink.url}"\n', encoding="utf-8")
    config = load_notify(path)
    engine = make_engine(sqlite_url)
    upgrade_engine(engine)
    try:
        with session_scope(engine) as session:
            collect(session, config)
            run_id = open_run(session, "reverb", datetime.now(UTC) - timedelta(seconds=1))
        titles = {
            1: "Korg MS-20 439057",  # the watched serial
            2: "Korg MS-20 439051",  # one edit from it
            3: "Korg MS-20 146002",  # in the watched range
            4: "Korg MS-20 147333",  # none
            5: "Old monosynth, the plate reads 439057",  # no model recognised: the serial in the text
            6: "Korg Polysix 388831",  # a watched model
        }
        records = [
            {"source": "reverb", "url": f"https://reverb.example/{n}", "title": title, "seller": f"s{n}"}
            for n, title in titles.items()
        ]
        with session_scope(engine) as session:
            assert ingest_records(session, records, rules).errors == []
        notify_once(engine, config)  # the run is still open: only the watch hits go now
        hits = [m for m in sink.messages if m["title"].startswith("korgwatch: watch hit")]
        assert len(hits) == len(sink.messages) == 5
        urls = sorted(m["message"].split("https://reverb.example/")[1][0] for m in hits)
        assert urls == ["1", "2", "3", "5", "6"]
        assert any("stolen 2024" in m["message"] and "seller s1" in m["message"] for m in hits)
        assert any("one edit from 439057" in m["message"] for m in hits)

        with session_scope(engine) as session:
            session.get(CrawlRun, run_id).pages = 1  # type: ignore[union-attr]
            close_runs(session, [run_id], datetime.now(UTC) + timedelta(seconds=1))
        notify_once(engine, config)
        digest = sink.messages[5:]
        assert len(digest) == 1 and "watch hit" not in digest[0]["message"]
        assert "MS-20 147333" in digest[0]["message"]
    finally:
        engine.dispose()
