"""Atom feeds: made by feedgen, parsed here by feedparser; entries link to the listing page and the original
listing; public feeds need no login, the queue feed needs the page's token; `korgwatch feed` writes the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from korgwatch.cli import app
from korgwatch.notify.config import NotifyConfigError, load_notify
from pipeline.rules import Rules
from review.app import ReviewConfig, create_app

TOKEN = "a-long-random-review-token-for-tests-1234"
RECORDS = [
    {"source": "reverb", "url": "https://reverb.example/1", "title": "Korg MS-20 SN 144571", "price": "900"},
    {"source": "ebay", "url": "https://ebay.example/2", "title": "Korg MS-20 SN 730144 <b>\x01bold</b>"},
    {"source": "reverb", "url": "https://reverb.example/3", "title": "Korg Polysix 388831"},
]


@pytest.fixture
def engine(sqlite_url: str, rules: Rules) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    upgrade_engine(eng)
    with session_scope(eng) as session:
        assert ingest_records(session, RECORDS, rules).errors == []
    yield eng
    eng.dispose()


def client(engine: Engine, rules: Rules, public: tuple[str, ...] = ("sightings", "models")) -> TestClient:
    config = ReviewConfig(engine.url.render_as_string(hide_password=False), rules, token=TOKEN, public_feeds=public)
    return TestClient(create_app(config, engine=engine), base_url="http://korg.example.org")


def test_sightings_feed_is_public_and_its_entries_lead_to_the_listing_page(engine: Engine, rules: Rules) -> None:
    web = client(engine, rules)
    response = web.get("/feeds/sightings.atom")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    titles = sorted(entry.title for entry in feed.entries)
    assert titles == ["MS-20 144571", "PolySix 388831"]  # counted first sightings; the flagged one waits
    entry = next(e for e in feed.entries if e.title == "MS-20 144571")
    links = {link.rel: link.href for link in entry.links}
    assert links["related"] == "https://reverb.example/1"
    assert links["alternate"].startswith("http://korg.example.org/listing/")
    page = web.get(links["alternate"], auth=("keeper", TOKEN))  # the page itself still needs the token
    assert page.status_code == 200 and "144571" in page.text


def test_queue_feed_needs_the_token_and_escapes_scraped_text(engine: Engine, rules: Rules) -> None:
    web = client(engine, rules)
    assert web.get("/feeds/queue.atom").status_code == 401
    response = web.get("/feeds/queue.atom", auth=("keeper", TOKEN))
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert [e.title for e in feed.entries] == ["serial_outside_blocks: MS-20 730144"]
    assert "<b>" not in response.text  # the seller's markup is text, escaped
    assert "\x01" not in response.text


def test_model_feed_and_private_feeds(engine: Engine, rules: Rules) -> None:
    feed = feedparser.parse(client(engine, rules).get("/feeds/models/PolySix.atom").content)
    assert [e.title for e in feed.entries] == ["PolySix 388831"]
    private = client(engine, rules, public=())
    assert private.get("/feeds/sightings.atom").status_code == 401
    assert private.get("/feeds/models/PolySix.atom").status_code == 401
    assert private.get("/feeds/models/NoSuch.atom", auth=("k", TOKEN)).status_code == 404


def test_the_queue_cannot_be_made_public(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text("public_feeds: [sightings, queue]\n", encoding="utf-8")
    with pytest.raises(NotifyConfigError, match=r"notify.yaml:1: public_feeds: 'queue' cannot be public"):
        load_notify(path)


def test_feed_command_writes_the_same_feed_to_a_file(engine: Engine, sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "site" / "sightings.atom"
    out.parent.mkdir()
    result = CliRunner().invoke(
        app, ["feed", "sightings", "-o", str(out), "--db", sqlite_url, "--base-url", "https://korg.example.org"]
    )
    assert result.exit_code == 0, result.output
    feed = feedparser.parse(out.read_bytes())
    assert sorted(e.title for e in feed.entries) == ["MS-20 144571", "PolySix 388831"]
    assert all(
        link.href.startswith("https://korg.example.org/listing/")
        for e in feed.entries
        for link in e.links
        if link.rel == "alternate"
    )
    bad = CliRunner().invoke(app, ["feed", "MS-99", "--db", sqlite_url])
    assert bad.exit_code == 2 and "MS-99" in bad.output


def test_export_format_atom_writes_the_sightings_feed_from_a_day_on(
    engine: Engine, rules: Rules, sqlite_url: str
) -> None:
    with session_scope(engine) as session:
        old = {
            "source": "reverb",
            "url": "https://reverb.example/9",
            "title": "Korg MS-10 SN 138834",
            "posted_at": "2020-05-01T10:00:00Z",
        }
        assert ingest_records(session, [old], rules).errors == []
    everything = CliRunner().invoke(app, ["export", "--since", "2019-01-01", "--format", "atom", "--db", sqlite_url])
    assert everything.exit_code == 0, everything.output
    assert "MS-10 138834" in [e.title for e in feedparser.parse(everything.output.encode()).entries]
    recent = CliRunner().invoke(app, ["export", "--since", "2021-01-01", "--format", "atom", "--db", sqlite_url])
    feed = feedparser.parse(recent.output.encode())
    assert not feed.bozo and sorted(e.title for e in feed.entries) == ["MS-20 144571", "PolySix 388831"]
