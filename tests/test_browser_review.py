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


def _ingest(engine: Any, rules: Rules, *titles: str) -> None:
    base = {"source": "reverb", "body": "", "posted_at": "2026-03-01T10:00:00Z", "price": "1100.00", "currency": "USD"}
    for n, title in enumerate(titles, start=1):
        with session_scope(engine) as session:
            record = {**base, "url": f"https://reverb.com/item/{n}", "external_id": str(n), "title": title}
            ingest_records(session, [record], rules, now=NOW + timedelta(hours=n))


def _chip(page: Any, code: str) -> int:
    return int(page.locator(f'.chips li[data-code="{code}"] b').inner_text())


def test_undo_counts_force_and_phone_width(sqlite_url: str, rules: Rules) -> None:
    """Issue 13 items 9 to 11 in the browser: the per-code count follows an in-place decision, `u` undoes it,
    a correction outside the blocks asks for force with a reason, the queue fits 390 px, the listing page
    words the blocks as the queue does, and a missing listing is "Not found"."""
    sync_playwright = _need_browser()
    from review.app import LOOPBACK_HOSTS, ReviewConfig
    from review.screenshots import CHROMIUM_ARGS, running_server

    engine = make_engine(sqlite_url)
    upgrade_engine(engine)
    _ingest(engine, rules, "Korg MS-20 SN 730144", "Korg MS-20 SN 121234", "Korg MS-10 SN 129999")
    with session_scope(engine) as session:
        flags = {f.listing_id: (f.id, f.code) for f in session.scalars(select(Flag))}
    code = flags[3][1]
    config = ReviewConfig(sqlite_url, rules, reviewer="browser", allowed_hosts=LOOPBACK_HOSTS)
    with running_server(config) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url + "/")
            assert page.locator("tr.item").count() == 3
            # a phone: nothing wider than the screen, the decisions within reach
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            confirm = page.locator(f"#flag-{flags[3][0]} button[data-key=c]")
            box = confirm.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390

            before = _chip(page, code)
            page.keyboard.press("j")  # the newest first: listing 3
            assert page.locator("tr.item.selected").get_attribute("data-flag") == str(flags[3][0])
            page.keyboard.press("c")
            page.locator(f"#flag-{flags[3][0]}").wait_for(state="detached", timeout=10_000)
            assert _chip(page, code) == before - 1
            assert page.locator(".queue-head .count").inner_text() == "2"
            assert page.locator(".toast button.undo").is_visible()
            page.keyboard.press("u")
            page.locator(f"#flag-{flags[3][0]}").wait_for(state="attached", timeout=10_000)
            assert page.locator("tr.item").count() == 3 and _chip(page, code) == before

            # force: the in-place correction turns into the explicit second step, with its own reason
            for _ in range(3):
                page.keyboard.press("j")
            assert page.locator("tr.item.selected").get_attribute("data-flag") == str(flags[1][0])
            page.keyboard.press("e")
            page.keyboard.type("999999")
            page.keyboard.press("Tab")
            page.keyboard.type("plate photo")
            page.keyboard.press("Enter")
            page.locator("form.force-form").wait_for(timeout=10_000)
            assert "use force to keep it" in page.locator(".force-box").inner_text()
            page.locator("form.force-form button").click()  # no reason yet: the browser asks for one
            assert page.locator("form.force-form").count() == 1
            page.locator("form.force-form input[name=reason]").fill("the plate photo is clear")
            page.locator("form.force-form button").click()
            page.wait_for_url("**/?done=correct*", timeout=10_000)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390

            # the listing page words the blocks as the queue does, spaced, and can reopen
            page.goto(f"{url}/listing/2")
            assert "GT-6 (12nnnn (uncertain))" in page.locator(".appearance .fit").first.inner_text()
            assert "1100.00 USD (this listing)" in page.locator(".timeline li.this").first.inner_text()
            page.goto(f"{url}/listing/3")
            assert "13nnnn from 130000" in page.locator(".appearance .fit").first.inner_text()
            page.goto(f"{url}/listing/999")
            assert page.title().startswith("Not found")
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()

    with session_scope(engine) as session:
        corrected = session.get(Flag, flags[1][0])
        assert corrected is not None and corrected.status == "corrected"
        actions = [(e.action, e.flag_id) for e in session.scalars(select(ReviewLog).order_by(ReviewLog.id))]
        assert actions == [("confirm", flags[3][0]), ("undo", flags[3][0]), ("correct", flags[1][0])]
        forced = session.scalars(select(ReviewLog).where(ReviewLog.action == "correct")).one()
        assert (forced.note, forced.new_value["forced"]) == ("the plate photo is clear", True)
        assert session.get(Flag, flags[3][0]).status == "open"  # type: ignore[union-attr]
    engine.dispose()


def test_side_by_side_photos_come_from_the_store(sqlite_url: str, rules: Rules, tmp_path: Path) -> None:
    """Issue 15: the listing page shows every appearance's photos side by side, each loaded from this server's
    store by hash (the browser asks no other host), the re-uploaded plate photo marked and linked to the
    original, under the CSP that allows only this origin's images."""
    sync_playwright = _need_browser()
    from fixtures.storage.photos import jpeg, keeping_analyser, picture, reuploaded

    from review.app import LOOPBACK_HOSTS, ReviewConfig
    from review.screenshots import CHROMIUM_ARGS, running_server

    engine = make_engine(sqlite_url)
    upgrade_engine(engine)
    root = tmp_path / "photos"
    plate, front, other = picture(61), picture(62), picture(63)
    listings = [
        ({"title": "Korg MS-20 s/n 140144", "seller": "alice"}, [jpeg(front), jpeg(plate)], NOW),
        ({"title": "KORG MS20 140144 serviced", "seller": "bob"}, [jpeg(other), reuploaded(plate)], NOW),
    ]
    for n, (over, photos, when) in enumerate(listings, start=1):
        record = {
            "source": "reverb",
            "url": f"https://reverb.com/item/{n}",
            "external_id": str(n),
            "body": "",
            "posted_at": f"2026-0{n + 2}-01T10:00:00Z",
            "images": [f"https://img.example/{n}/{i}.jpg" for i in range(2)],
            **over,
        }
        with session_scope(engine) as session:
            analyser = keeping_analyser(session, root, {record["title"]: photos})
            ingest_records(session, [record], rules, now=when, analyser=analyser)
    config = ReviewConfig(sqlite_url, rules, reviewer="browser", allowed_hosts=LOOPBACK_HOSTS, photo_root=root)
    with running_server(config) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            requested: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url + "/listing/2")
            columns = page.locator(".photo-cols .photo-col")
            assert columns.count() == 2
            assert "this listing" in columns.nth(1).inner_text() and "listing 1" in columns.nth(0).inner_text()
            images = page.locator(".photo-cols img")
            assert images.count() == 4
            for i in range(4):
                images.nth(i).scroll_into_view_if_needed()
            page.wait_for_function(
                "[...document.querySelectorAll('.photo-cols img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=10_000,
            )
            srcs = [images.nth(i).evaluate("i => i.currentSrc") for i in range(4)]
            assert all(s.startswith(url + "/photos/") and s.endswith("/thumb") for s in srcs), srcs
            widths = [images.nth(i).evaluate("i => i.naturalWidth") for i in range(4)]
            assert max(widths) == 320  # the thumbnails, not the full photos
            # The plate photo and its re-upload: marked in both columns, each linking to the other.
            matched = page.locator(".photo-col .photo.matched")
            assert matched.count() == 2
            link = matched.nth(1).locator("a.match")
            target = link.get_attribute("href")
            assert target is not None and target.startswith("#p")
            link.click()
            assert page.evaluate("location.hash") == target
            assert "Repost: shares photos with listing 1" in page.locator(".kind-evidence").inner_text()
            assert [u for u in requested if not u.startswith(url)] == []  # nothing from the marketplace
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()
    engine.dispose()
