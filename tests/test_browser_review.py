"""End to end in real headless Chromium: the real server on a loopback port, the queue, a correction made with
the keyboard alone, the flag leaving the queue and the correction reaching the database."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from db.models import Appearance, Flag, Instrument, ReviewLog
from pipeline.rules import Rules

CHROMIUM = Path("/usr/bin/chromium")
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

pytestmark = [pytest.mark.chromium, pytest.mark.slow]


def _need_browser() -> Any:
    """Playwright's sync API, or a skip with the reason (a failure when CI is set: CI must run this)."""
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problems.append("playwright is not installed (pip install playwright)")
        sync_playwright = None
    if problems:
        message = "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run: {message} (required when CI is set)")
        pytest.skip(message)
    return sync_playwright


def test_keyboard_correction_end_to_end(sqlite_url: str, rules: Rules) -> None:
    sync_playwright = _need_browser()
    from review.app import LOOPBACK_HOSTS, ReviewConfig
    from review.screenshots import CHROMIUM_ARGS, running_server

    engine = make_engine(sqlite_url)
    upgrade_engine(engine)
    base = {"source": "reverb", "body": "", "posted_at": "2026-03-01T10:00:00Z"}
    with session_scope(engine) as session:
        ingest_records(
            session,
            [{**base, "url": "https://reverb.com/item/1", "external_id": "1", "title": "Korg MS-20 SN 730144"}],
            rules,
            now=NOW,
        )
    with session_scope(engine) as session:
        hostile = "Korg MS-20 <script>alert(1)</script> s/n 162102"
        ingest_records(
            session,
            [{**base, "url": "https://reverb.com/item/2", "external_id": "2", "title": hostile}],
            rules,
            now=NOW + timedelta(hours=1),
        )
        target = session.scalar(select(Flag.id).where(Flag.listing_id == 1))
    assert target is not None

    config = ReviewConfig(sqlite_url, rules, reviewer="browser", allowed_hosts=LOOPBACK_HOSTS)
    dialogs: list[str] = []
    with running_server(config) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url + "/")
            assert page.locator("tr.item").count() == 2
            assert "<script>alert(1)</script>" in page.locator("tr.item").first.inner_text()  # shown as text

            page.keyboard.press("j")
            page.keyboard.press("j")
            assert page.locator("tr.item.selected").get_attribute("data-flag") == str(target)
            page.keyboard.press("?")
            assert page.locator("#help").is_visible()
            page.keyboard.press("Escape")
            assert not page.locator("#help").is_visible()
            page.keyboard.press("e")
            assert page.evaluate("document.activeElement.name") == "serial"
            page.keyboard.type("140144")
            page.keyboard.press("Tab")
            page.keyboard.type("plate photo shows 140144")
            page.keyboard.press("Enter")

            page.locator(f"#flag-{target}").wait_for(state="detached", timeout=10_000)
            assert page.locator("tr.item").count() == 1
            page.reload()
            assert page.locator(f"#flag-{target}").count() == 0 and page.locator("tr.item").count() == 1
            assert dialogs == [], "a hostile title ran as script"
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()

    with session_scope(engine) as session:
        flag = session.get(Flag, target)
        assert flag is not None and (flag.status, flag.reviewer) == ("corrected", "browser")
        serial = session.scalar(select(Instrument.serial).join(Appearance).where(Appearance.listing_id == 1))
        assert serial == "140144"
        (entry,) = session.scalars(select(ReviewLog)).all()
        assert (entry.action, entry.note, entry.reviewer) == ("correct", "plate photo shows 140144", "browser")
        assert entry.at is not None
    engine.dispose()
