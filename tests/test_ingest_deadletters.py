"""A listing the store refuses costs only itself, in the crawl and in `dead-letter replay` (issue 17.6), on SQLite
and PostgreSQL. The refusal is real: a trigger in the test database refuses one title, as a backend refuses what
no check foresaw; and a NUL in a crawled listing no longer sends its page to the dead letters at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures.storage.helpers import refuse_poison
from scrapy.utils.test import get_crawler
from sqlalchemy import Engine, select

from crawler.deadletter import REPLAYED_SUFFIX, write_dead_letters
from crawler.pages.records import ListingRecord
from crawler.pipelines import IngestPipeline
from db.engine import session_scope
from db.models import Listing

pytest_plugins = ["fixtures.storage.builders"]
REPO = Path(__file__).resolve().parent.parent


def _titles(engine: Engine) -> set[str]:
    with session_scope(engine) as session:
        return set(session.scalars(select(Listing.title)))


def _page(n: int, poisoned: dict[int, str]) -> list[ListingRecord]:
    """A page of 30 Reverb listings, some with hostile titles."""
    return [
        ListingRecord(
            source="reverb",
            url=f"https://reverb.com/item/{i}",
            external_id=str(i),
            title=poisoned.get(i, f"Korg MS-10 s/n {134400 + i}"),
            price="1200.00",
            currency="USD",
        )
        for i in range(n)
    ]


def _pipeline(engine: Engine, db_url: str, dead: Path) -> IngestPipeline:
    crawler = get_crawler(settings_dict={"KORGWATCH_DB_URL": db_url, "KORGWATCH_DEAD_LETTER_DIR": str(dead)})
    pipeline = IngestPipeline(crawler)
    pipeline.open_spider()
    return pipeline


def test_the_crawl_sends_only_the_refused_listing_to_the_dead_letters(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    refuse_poison(engine)
    dead = tmp_path / "dead"
    pipeline = _pipeline(engine, db_url, dead)
    try:
        summary = pipeline._ingest(_page(30, {4: "Korg MS-20 POISON", 17: "Korg Polysix \x00 NUL"}))
    finally:
        assert pipeline.engine is not None
        pipeline.engine.dispose()
    assert summary.listings_new == 29  # the NUL listing is stored (NUL replaced), only the poisoned one is not
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith("https://reverb.com/item/4 not stored after 1 attempt(s): database error")
    assert "Korg Polysix \ufffd NUL" in _titles(engine)
    letters = [json.loads(line) for path in dead.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert [letter["record"]["url"] for letter in letters] == ["https://reverb.com/item/4"]
    assert letters[0]["error"].startswith("database error (refused): ") and "poisoned listing" in letters[0]["error"]


def test_replay_stores_the_good_letters_and_keeps_only_the_refused(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    dead = tmp_path / "dead"
    # Letters as an older korgwatch wrote them: a whole page sent away by one bad listing.
    page = _page(30, {4: "Korg MS-20 POISON", 9: "Korg MS-20 \x00 NUL", 12: "Korg MS-20 \ud800 lone"})
    path = write_dead_letters(dead, page, "database error: PostgreSQL text fields cannot contain NUL", 1)
    with path.open("a", encoding="utf-8") as out:
        out.write("not a dead letter\n")
    refuse_poison(engine)
    result = subprocess.run(
        [sys.executable, "-m", "korgwatch.cli", "dead-letter", "replay", "--dir", str(dead), "--db", db_url],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1  # something is still refused: said, not hidden
    assert "Traceback" not in result.stderr
    assert f"{path}:5: database error (refused): " in result.stderr
    assert "29 new" in result.stdout and "1 still refused" in result.stdout
    titles = _titles(engine)
    assert len(titles) == 29
    assert {"Korg MS-20 \ufffd NUL", "Korg MS-20 \ufffd lone"} <= titles
    kept = path.read_text(encoding="utf-8").splitlines()
    assert len(kept) == 2 and kept[1] == "not a dead letter"
    assert json.loads(kept[0])["record"]["url"] == "https://reverb.com/item/4"
    assert not path.with_name(path.name + REPLAYED_SUFFIX).exists()
