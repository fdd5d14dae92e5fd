"""The one item pipeline: batches of listings into the store through `db.ingest.ingest_records`.

Thin on purpose: the same function serves `korgwatch ingest`, so a crawled listing and an imported one are
stored, analysed and classified alike. Each batch is one transaction, run in a worker thread so that the
crawl keeps downloading while the analyser and the database work; batches are written one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from itemadapter import ItemAdapter
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from crawler.items import ListingItem
from crawler.pages.records import ListingRecord
from db.engine import make_engine, session_scope
from db.ingest import IngestSummary, ingest_records

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from sqlalchemy import Engine

    from pipeline.rules import Rules

logger = logging.getLogger(__name__)

INGEST_STATS = "korgwatch/ingest"


def _default_db_url() -> str:
    from korgwatch.paths import default_db_url

    return default_db_url()


def to_record(item: Any) -> ListingRecord:
    if isinstance(item, ListingItem):
        return item.to_record()
    values = ItemAdapter(item).asdict()
    values["images"] = tuple(values.get("images") or ())
    return ListingRecord(**values)


class IngestPipeline:
    """Store listings in batches of KORGWATCH_BATCH_SIZE; the run's IngestSummary goes into the stats."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.db_url: str = crawler.settings.get("KORGWATCH_DB_URL") or _default_db_url()
        self.batch_size = crawler.settings.getint("KORGWATCH_BATCH_SIZE", 200)
        config = crawler.settings.get("KORGWATCH_CONFIG_DIR")
        self.config_dir = Path(config) if config else None
        self.batch: list[ListingRecord] = []
        self.summary = IngestSummary()
        self.engine: Engine | None = None
        self.rules: Rules | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def open_spider(self) -> None:
        from pipeline.rules import load_rules

        self.rules = load_rules(self.config_dir)
        self.engine = make_engine(self.db_url)

    async def process_item(self, item: Any) -> Any:
        self.batch.append(to_record(item))
        if len(self.batch) >= self.batch_size:
            await self._flush()
        return item

    async def close_spider(self) -> None:
        await self._flush()
        stats = self.crawler.stats
        stats.set_value(INGEST_STATS, self.summary.to_dict())
        if self.engine is not None:
            self.engine.dispose()

    async def _flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        async with self._lock:
            part = await asyncio.to_thread(self._ingest, batch)
        self.summary.add(part)
        for error in part.errors:
            self.crawler.stats.inc_value("korgwatch/errors")
            logger.error("ingest: %s", error)

    def _ingest(self, batch: list[ListingRecord]) -> IngestSummary:
        """One transaction; a unique-key race with another writer is retried once (then it sees theirs)."""
        assert self.engine is not None and self.rules is not None
        for attempt in (1, 2):
            try:
                with session_scope(self.engine) as session:
                    return ingest_records(session, batch, self.rules)
            except IntegrityError as exc:
                if attempt == 2:
                    return _failed(batch, exc)
            except SQLAlchemyError as exc:
                return _failed(batch, exc)
        raise AssertionError("unreachable")


def _failed(batch: list[ListingRecord], exc: SQLAlchemyError) -> IngestSummary:
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).splitlines()[0]
    return IngestSummary(
        batches_failed=1, errors=[f"batch of {len(batch)} listings rolled back: database error: {message}"]
    )
