"""The one item pipeline: batches of listings into the store through `db.ingest.ingest_records`.

Thin on purpose: the same function serves `korgwatch ingest`, so a crawled listing and an imported one are
stored, analysed and classified alike. Each batch is one transaction, run in a worker thread so that the
crawl keeps downloading while the analyser and the database work; batches are written one at a time.

No listing is lost to the store: while the database refuses connections a batch waits and is retried with
growing pauses (the crawl waits with it); after KORGWATCH_STORE_RETRIES it goes to a dead-letter file
(crawler/deadletter.py) with the error, to be replayed by `korgwatch dead-letter replay`. A listing the
store refuses (not the database being down) is split out of its batch: only it goes to the dead letters. A
worker's batches are grouped by crawl run, and each stored group is reported to the run ledger (`ingest_stored`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.utils.defer import deferred_from_coro

from crawler.deadletter import DeadLetterUnwritable, dead_letter_dir, write_dead_letters
from crawler.distributed.tracker import default_worker_name, ingest_stored
from crawler.items import ListingItem
from crawler.pages.records import ListingRecord
from db.engine import make_engine
from db.ingest import IngestSummary, ingest_records, store_isolating
from db.photos import FetchedPhoto, ListingKey
from db.run_ledger import RunCounts, add_counts

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from pipeline.rules import Rules

logger = logging.getLogger(__name__)

INGEST_STATS = "korgwatch/ingest"
# Listings taken but not yet stored (or dead-lettered): a worker is busy while any wait, so that their run
# does not close before they are in the store.
UNSTORED_STAT = "korgwatch/unstored"
# What made the run fail whatever else it did (crawler.run reads it): listings neither stored nor kept.
FATAL_STAT = "korgwatch/fatal"
STORE_RETRIES = 6  # after the first attempt; with the pauses below, about a minute of waiting
STORE_RETRY_BASE = 1.0
STORE_RETRY_MAX = 30.0


def _default_db_url() -> str:
    from korgwatch.paths import default_db_url

    return default_db_url()


def to_record(item: Any) -> ListingRecord:
    if isinstance(item, ListingItem):
        return item.to_record()
    values = ItemAdapter(item).asdict()
    values.pop("crawl_run", None)
    values.pop("photos", None)
    values["images"] = tuple(values.get("images") or ())
    return ListingRecord(**values)


class IngestPipeline:
    """Store listings in batches of KORGWATCH_BATCH_SIZE; the run's IngestSummary goes into the stats."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.db_url: str = crawler.settings.get("KORGWATCH_DB_URL") or _default_db_url()
        settings = crawler.settings
        self.batch_size = settings.getint("KORGWATCH_BATCH_SIZE", 200)
        self.max_wait = settings.getfloat("KORGWATCH_BATCH_MAX_WAIT", 2.0)
        self.oldest: float | None = None
        self.retries = settings.getint("KORGWATCH_STORE_RETRIES", STORE_RETRIES)
        self.retry_base = settings.getfloat("KORGWATCH_STORE_RETRY_BASE", STORE_RETRY_BASE)
        self.retry_max = settings.getfloat("KORGWATCH_STORE_RETRY_MAX", STORE_RETRY_MAX)
        self.dead_letters = dead_letter_dir(settings.get("KORGWATCH_DEAD_LETTER_DIR"))
        config = crawler.settings.get("KORGWATCH_CONFIG_DIR")
        self.config_dir = Path(config) if config else None
        self.batch: list[tuple[int | None, ListingRecord]] = []
        # What the photos pipeline did with each listing's photos, stored in the listing's transaction.
        self.photos: dict[ListingKey, list[FetchedPhoto]] = {}
        self.summary = IngestSummary()
        self.engine: Engine | None = None
        self.rules: Rules | None = None
        self._lock = asyncio.Lock()
        # A distributed worker writes its run counts in the transaction that stores the listings, so a worker
        # killed before its run tracker reports still leaves counts that match what it stored (issue 17.2).
        self.ledger_worker: str | None = (
            (settings.get("KORGWATCH_WORKER_NAME") or default_worker_name())
            if settings.getbool("KORGWATCH_DISTRIBUTED") else None
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.spider_idle, signal=signals.spider_idle)
        return pipeline

    def spider_idle(self) -> None:
        """Nothing left to fetch for now (a worker waiting for runs): store what is waiting."""
        if self.batch:
            deferred_from_coro(self._flush())

    def open_spider(self) -> None:
        from pipeline.rules import load_rules

        self.rules = load_rules(self.config_dir)
        self.engine = make_engine(self.db_url)

    async def process_item(self, item: Any) -> Any:
        run = item.crawl_run if isinstance(item, ListingItem) else None
        record = to_record(item)
        self.batch.append((run, record))
        if isinstance(item, ListingItem) and item.photos is not None:
            self.photos[(record.source, record.external_id)] = list(item.photos)
        self.crawler.stats.inc_value(UNSTORED_STAT)
        now = time.monotonic()
        if self.oldest is None:
            self.oldest = now
        if len(self.batch) >= self.batch_size or now - self.oldest >= self.max_wait:
            await self._flush()
        return item

    async def close_spider(self) -> None:
        await self._flush()
        stats = self.crawler.stats
        stats.set_value(INGEST_STATS, self.summary.to_dict())
        if self.engine is not None:
            self.engine.dispose()

    async def _flush(self) -> None:
        """Store the waiting listings; one flush at a time, so closing waits for the one in flight."""
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        if not self.batch:
            return
        batch, self.batch, self.oldest = self.batch, [], None
        photos, self.photos = self.photos, {}
        by_run: defaultdict[int | None, list[ListingRecord]] = defaultdict(list)
        for run, record in batch:
            by_run[run].append(record)
        for run, records in by_run.items():
            try:
                part = await asyncio.to_thread(self._ingest, records, run, photos)
            except DeadLetterUnwritable as lost:  # neither stored nor kept: the run fails, with the reason
                self._fail_run(str(lost))
                part = IngestSummary(batches_failed=1, errors=[str(lost)])
            self.crawler.stats.inc_value(UNSTORED_STAT, -len(records))
            self.summary.add(part)
            for error in part.errors:
                self.crawler.stats.inc_value("korgwatch/errors")
                logger.error("ingest: %s", error)
            for note in part.notes:  # stored, with a field changed to be storable (db/records.py)
                logger.info("ingest: %s", note)
            self.crawler.signals.send_catch_log(signal=ingest_stored, run=run, summary=part)

    def _storer(
        self, run: int | None, photos: Mapping[ListingKey, list[FetchedPhoto]] | None = None
    ) -> Callable[[Session, Sequence[ListingRecord]], IngestSummary]:
        """What stores one part of a batch in its transaction: the listings (with their photos), and a worker's
        counts of its run."""
        rules, worker = self.rules, self.ledger_worker
        assert rules is not None

        def store(session: Session, part: Sequence[ListingRecord]) -> IngestSummary:
            keys = {(r.source, r.external_id) for r in part}
            mine = {key: value for key, value in (photos or {}).items() if key in keys}
            return ingest_records(session, part, rules, photos=mine or None)

        if worker is None or run is None:
            return store

        def store_and_count(session: Session, part: Sequence[ListingRecord]) -> IngestSummary:
            summary = store(session, part)
            counts = RunCounts(
                listings_new=summary.listings_new,
                listings_updated=summary.listings_updated,
                listings_unchanged=summary.listings_unchanged,
                flags_raised=summary.flags_raised,
            )
            add_counts(session, worker, {run: counts}, datetime.now(UTC))
            return summary

        return store_and_count

    def _ingest(
        self,
        batch: list[ListingRecord],
        run: int | None = None,
        photos: Mapping[ListingKey, list[FetchedPhoto]] | None = None,
    ) -> IngestSummary:
        """Store a batch, isolating the listings the store refuses (each alone goes to the dead letters); an
        unreachable database is waited for; what is still unstored after the retries goes to the dead letters."""
        assert self.engine is not None and self.rules is not None
        store = self._storer(run, photos)
        summary = IngestSummary()
        pending = batch
        attempt = 0
        while True:
            attempt += 1
            result = store_isolating(self.engine, pending, store)
            summary.add(result.summary)
            for record, reason in result.refused:
                summary.add(self._dead([record], f"database error (refused): {reason}", attempt))
            if not result.unstored:
                return summary
            pending = result.unstored
            if attempt > self.retries:
                summary.add(self._dead(pending, f"database error: {result.unavailable}", attempt))
                return summary
            pause = min(self.retry_base * 2 ** (attempt - 1), self.retry_max)
            self.crawler.stats.inc_value("korgwatch/store_retries")
            logger.warning(
                "store unavailable (%s): batch of %d listings waits %.1f s (retry %d of %d)",
                result.unavailable,
                len(pending),
                pause,
                attempt,
                self.retries,
            )
            time.sleep(pause)

    def _fail_run(self, reason: str) -> None:
        """Listings were lost: the run fails (`failed`, exit non-zero, the reason in `runs`) and stops now."""
        stats = self.crawler.stats
        stats.set_value(FATAL_STAT, [*(stats.get_value(FATAL_STAT) or []), reason])
        logger.critical("%s", reason, extra={"spider": self.crawler.spider})
        engine = self.crawler.engine
        if engine is not None and engine.running:  # not awaited: closing may be what is flushing this batch
            deferred_from_coro(engine.close_spider_async(reason="listings_lost"))

    def _dead(self, batch: list[ListingRecord], error: str, attempts: int) -> IngestSummary:
        path = write_dead_letters(self.dead_letters, batch, error, attempts)
        self.crawler.stats.inc_value("korgwatch/dead_letters", len(batch))
        what = batch[0].url if len(batch) == 1 else f"batch of {len(batch)} listings"
        return IngestSummary(
            batches_failed=1,
            errors=[
                f"{what} not stored after {attempts} attempt(s): {error}; "
                f"kept in {path} (replay: korgwatch dead-letter replay)"
            ],
        )
