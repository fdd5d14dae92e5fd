"""A feed in real headless Chromium: the real server on a loopback port serves the Atom feed; the browser
subscribes to nothing, but follows the feed's first entry to its listing page."""

from __future__ import annotations

import feedparser
import pytest
from test_browser_review import CHROMIUM, _need_browser

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from pipeline.rules import Rules

pytestmark = [pytest.mark.chromium, pytest.mark.slow]


def test_browser_follows_a_feed_entry_to_its_listing_page(sqlite_url: str, rules: Rules) -> None:
    sync_playwright = _need_browser()
    from review.app import LOOPBACK_HOSTS, ReviewConfig
    from review.screenshots import CHROMIUM_ARGS, running_server

    engine = make_engine(sqlite_url)
    upgrade_engine(engine)
    with session_scope(engine) as session:
        record = {"source": "reverb", "url": "https://reverb.com/item/7", "title": "Korg MS-20 SN 144571"}
        assert ingest_records(session, [record], rules).errors == []
    engine.dispose()
    config = ReviewConfig(sqlite_url, rules, reviewer="browser", allowed_hosts=LOOPBACK_HOSTS)
    with running_server(config) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            response = page.request.get(url + "/feeds/sightings.atom")
            assert response.ok
            feed = feedparser.parse(response.body())
            entry = feed.entries[0]
            assert entry.title == "MS-20 144571"
            target = next(link.href for link in entry.links if link.rel == "alternate")
            assert target.startswith(url + "/listing/")
            page.goto(target)
            assert "144571" in page.locator("body").inner_text()
            assert page.locator('a[href="https://reverb.com/item/7"]').count() >= 1  # the original listing
        finally:
            browser.close()
