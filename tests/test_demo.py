"""`korgwatch demo` end to end: the fixture site, every source crawled into a fresh SQLite file, the summary
and the review queue, in well under a minute. Run as a subprocess (the crawl needs a fresh reactor)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from crawler.sources import load_sources
from db.engine import make_engine, session_scope
from db.models import CrawlRun, Flag, Listing, ListingPhoto, Photo, Source

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_demo_crawls_every_source_and_shows_the_queue(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EBAY_", "KORGWATCH_"))}
    env |= {"KORGWATCH_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "korgwatch.commands.crawling", "demo", "--no-progress"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert elapsed < 60
    out = done.stdout
    assert "Crawl summary" in out and "Open review queue" in out and "korgwatch serve" in out
    assert "Traceback" not in done.stderr

    db_url = f"sqlite:///{tmp_path / 'demo' / 'korgwatch-demo.sqlite'}"
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            per_source = dict(
                session.execute(select(Source.name, func.count(Listing.id)).join(Listing).group_by(Source.name)).all()
            )
            outcomes = {run.source.name: run.outcome for run in session.scalars(select(CrawlRun))}
            open_flags = session.scalar(select(func.count(Flag.id)).where(Flag.status == "open"))
    finally:
        engine.dispose()
    enabled = {source.name for source in load_sources().enabled()}
    assert set(per_source) == enabled and all(count > 0 for count in per_source.values())
    assert outcomes == dict.fromkeys(enabled, "ok")
    assert open_flags and f"Open review queue ({open_flags} flags)" in out
    # evidence of every new listing was kept beside the demo database
    assert any((tmp_path / "demo" / "evidence").rglob("*.gz"))
    # the sample sites' photos were kept in the data directory, each listing photo recorded as kept
    bundled = {path.name for path in (REPO_ROOT / "crawler" / "demo" / "data" / "photos").iterdir()}
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            statuses = set(session.scalars(select(ListingPhoto.status)))
            kept = session.scalar(select(func.count(ListingPhoto.id)).where(ListingPhoto.status == "kept"))
            files = session.scalar(select(func.count(Photo.id)))
    finally:
        engine.dispose()
    assert statuses == {"kept"} and files == len(bundled) and f"Kept {kept} listing photos" in out
    assert len(list((tmp_path / "photos").glob("??/*"))) == files
