"""What every korgwatch spider shares: URLs rebuilt on the configured base, paging with an incremental stop,
detail pages only for new or changed listings, evidence, and errors counted instead of lost.

Spiders only crawl; reading a page is `crawler/pages/<source>.py`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlencode, urlsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.evidence import (
    EVIDENCE_KEY,
    EVIDENCE_MISSING_KEY,
    KnownListing,
    default_evidence_dir,
    is_unchanged,
    load_known_listings,
    store_evidence,
)
from crawler.items import ListingItem
from crawler.pages.records import ListingRecord, PageResult
from crawler.sources import SourceConfig

logger = logging.getLogger(__name__)

ERROR_LOG_LIMIT = 50


def rebase(base_url: str, url_or_path: str, params: Mapping[str, str] | None = None) -> str:
    """`url_or_path`'s path (and query, unless `params` replace it) on `base_url`.

    Sources link to their real hosts (Blogger's `next` even to www.blogger.com); rebuilding every link from
    its path and parameters keeps a whole source on its configured base, so a test server or the demo site
    can stand in for it.
    """
    parts = urlsplit(url_or_path)
    path = parts.path or "/"
    query = parts.query if params is None else urlencode(list(params.items()))
    return f"{base_url.rstrip('/')}{path}" + (f"?{query}" if query else "")


class KorgSpider(scrapy.Spider):
    """Base spider: one source, configured by a `SourceConfig`."""

    #: Whether search summaries carry the full body (else unchanged-ness compares title and price only).
    summaries_have_body: ClassVar[bool] = True

    def __init__(self, source: SourceConfig | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if source is None:  # `scrapy crawl <name>`: the shipped config
            from crawler.sources import load_sources

            source = load_sources().source(self.name)
        self.source = source
        self.full = False
        self.evidence_dir: Path = default_evidence_dir()
        self.db_url: str | None = None
        self.known: dict[str, KnownListing] = {}
        self.error_messages: list[str] = []
        self.records_by_detail: dict[str, ListingRecord] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.full = settings.getbool("KORGWATCH_FULL")
        if settings.get("KORGWATCH_EVIDENCE_DIR"):
            spider.evidence_dir = Path(settings["KORGWATCH_EVIDENCE_DIR"])
        spider.db_url = settings.get("KORGWATCH_DB_URL")
        return spider

    def log(self, message: Any, level: int = logging.DEBUG, **kw: Any) -> None:  # type: ignore[override]
        """Spidermon still calls `Spider.log()`, deprecated since Scrapy 2.14: route it to the logger.

        Its report (tracebacks of failed monitors included) is logged at INFO: the failures reach the user as
        the run's `degraded` outcome and messages, not as tracebacks that look like a crash.
        """
        if isinstance(message, str) and message.startswith("[Spidermon]"):
            level = min(level, logging.INFO)
        self.logger.log(level, message, **kw)

    # -- what the store knows -------------------------------------------------------------------------
    def load_known(self) -> None:
        """Read the source's stored listings once: unchanged ones cost no detail request and stop paging."""
        if not self.db_url:
            return
        from db.engine import make_engine, read_scope

        engine = make_engine(self.db_url)
        try:
            with read_scope(engine) as session:
                self.known = load_known_listings(session, self.source.name)
        finally:
            engine.dispose()
        self.logger.info("%d %s listings already in the store", len(self.known), self.source.name)

    def unchanged(self, record: ListingRecord, *, summary: bool = False) -> bool:
        compare_body = self.summaries_have_body or not summary
        return is_unchanged(record, self.known.get(record.external_id), compare_body=compare_body)

    # -- requests -------------------------------------------------------------------------------------
    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        return rebase(self.source.base_url, path, params)

    def page_request(
        self,
        path: str,
        params: Mapping[str, str],
        callback: Callable[..., Any],
        *,
        page: int = 1,
        meta: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> scrapy.Request:
        """A search/feed page; `path` and `params` travel in meta so the next page is built from them."""
        return scrapy.Request(
            self.url(path, params),
            callback=callback,
            errback=self.on_error,
            meta={"path": path, "params": dict(params), "page": page, **(meta or {})},
            **kwargs,
        )

    # -- errors ---------------------------------------------------------------------------------------
    def record_error(self, message: str) -> None:
        """Count an error and keep its message for the crawl run's log tail; the crawl goes on."""
        self.crawler.stats.inc_value("korgwatch/errors")
        if len(self.error_messages) < ERROR_LOG_LIMIT:
            self.error_messages.append(message)
        self.logger.error(message)

    def on_error(self, failure: Failure) -> Iterator[ListingItem]:
        """A request that failed for good (retries exhausted, refused, too big): recorded, never fatal."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        response = getattr(failure.value, "response", None)
        reason = f"HTTP {response.status}" if response is not None else failure.getErrorMessage() or repr(failure.value)
        if failure.check(scrapy.exceptions.IgnoreRequest) and "robots.txt" in reason:
            self.crawler.stats.inc_value("korgwatch/robots_forbidden")
        self.record_error(f"{url}: {type(failure.value).__name__}: {reason}")
        yield from self.fallback(request.meta.get("summary") if request is not None else None)

    def fallback(self, summary: object) -> Iterator[ListingItem]:
        """A new listing whose detail page is lost still gets stored from its search summary.

        A known listing is left alone: its stored full text is better than a summary.
        """
        if isinstance(summary, ListingRecord) and summary.external_id not in self.known:
            yield from self.emit(summary, None)

    # -- items ----------------------------------------------------------------------------------------
    def emit(self, record: ListingRecord, response: Response | None) -> Iterator[ListingItem]:
        """Yield a record as an item, with evidence kept when the listing is new or its text changed."""
        known = self.known.get(record.external_id)
        digest: str | None = None
        if known is not None and self.unchanged(record):
            digest = known.evidence_sha256  # same text: keep pointing at the evidence already kept
        elif response is not None:
            digest = response.meta.get("_evidence_sha256")
            if digest is None and "_evidence_missing" not in response.meta:
                digest = self.keep_evidence(response)
        if digest is not None:
            record = replace(record, extra={**record.extra, EVIDENCE_KEY: digest})
        elif response is not None and "_evidence_missing" in response.meta:
            record = replace(record, extra={**record.extra, EVIDENCE_MISSING_KEY: response.meta["_evidence_missing"]})
        yield ListingItem.from_record(record)

    def keep_evidence(self, response: Response) -> str | None:
        """Keep the page; when it cannot be written (a full disk), the listing is stored all the same with its
        evidence marked missing (`extra["evidence_missing"]`), and the run counts an error (`degraded`)."""
        try:
            digest = store_evidence(self.evidence_dir, response.body)
        except OSError as exc:
            reason = f"not kept: {exc.strerror or exc}"
            response.meta["_evidence_missing"] = reason
            self.crawler.stats.inc_value("korgwatch/evidence_missing")
            self.record_error(f"{response.url}: evidence {reason} (in {self.evidence_dir}); its listings are stored")
            return None
        response.meta["_evidence_sha256"] = digest
        self.crawler.stats.inc_value("korgwatch/evidence_kept")
        return digest

    def handle_page(
        self,
        response: Response,
        result: PageResult,
        callback: Callable[..., Any],
        *,
        details: Mapping[str, ListingRecord | None] | None = None,
        detail_callback: Callable[..., Any] | None = None,
        request_kwargs: dict[str, Any] | None = None,
    ) -> Iterator[Any]:
        """Listings of one search/feed page, their detail requests, then the next page (unless we may stop).

        `details` maps detail-page path-or-URL to its search summary (None when the page gives no summary);
        a summary the store already has unchanged costs no request. The next page is skipped when paging is
        incremental, the source is date-sorted, and every listing on this page is already known unchanged.
        """
        stats = self.crawler.stats
        stats.inc_value("korgwatch/pages")
        for error in result.errors:
            self.record_error(f"{response.url}: {error}")
        request_kwargs = request_kwargs or {}

        if details:
            assert detail_callback is not None
            for target, summary in details.items():
                if summary is not None and self.unchanged(summary, summary=True):
                    stats.inc_value("korgwatch/listings_unchanged_skipped")
                    continue
                yield scrapy.Request(
                    self.url(target),
                    callback=detail_callback,
                    errback=self.on_error,
                    meta={"summary": summary, "detail_of": target},
                    **request_kwargs,
                )
            all_known = bool(details) and all(
                s is not None and self.unchanged(s, summary=True) for s in details.values()
            )
        else:
            for record in result.records:
                yield from self.emit(record, response)
            all_known = bool(result.records) and all(self.unchanged(r) for r in result.records)

        page = response.meta.get("page", 1)
        if not result.next_params or not (result.records or result.detail_urls):
            return
        if all_known and self.source.date_sorted and not self.full:
            stats.inc_value("korgwatch/incremental_stops")
            self.logger.info("incremental: every listing on %s is known and unchanged; not paging on", response.url)
            return
        if page >= self.source.page_limit:
            stats.inc_value("korgwatch/page_limit_reached")
            self.logger.warning("page limit %d reached at %s", self.source.page_limit, response.url)
            return
        params = {**response.meta["params"], **result.next_params}
        yield self.page_request(
            response.meta["path"],
            params,
            callback,
            page=page + 1,
            meta=self.carry_meta(response),
            **request_kwargs,
        )

    def carry_meta(self, response: Response) -> dict[str, Any]:
        """Meta keys a spider wants on its next page request (e.g. eBay's auth marker)."""
        return {}

    def closed(self, reason: str) -> None:
        self.crawler.stats.set_value("korgwatch/error_messages", list(self.error_messages))
