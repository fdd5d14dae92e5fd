"""Yahoo! Auctions Japan: search pages (newest first) → item pages for new or changed auctions.

Search cards give title and price only; the serial is in the item page's description. Times are JST and the
extractor makes them aware. Pages are parsed as if fetched from the real host, so item links are real-host
URLs whose paths the spider rebuilds on the configured base.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import Response

from crawler.pages.records import ListingRecord
from crawler.pages.yahoo_auctions import canonical_item_url, parse_item, parse_search
from crawler.spiders.base import KorgSpider, rebase

REAL_BASE = "https://auctions.yahoo.co.jp"
SEARCH_PATH = "/search/search"


class YahooAuctionsSpider(KorgSpider):
    name = "yahoo_auctions"
    summaries_have_body = False

    async def start(self) -> AsyncIterator[Any]:
        self.load_known()
        for query in self.source.queries:
            params = {
                "p": query,
                "va": query,
                "exflg": "1",
                "b": "1",
                "n": str(self.source.page_size),
                "s1": "new",
                "o1": "d",
            }
            yield self.page_request(SEARCH_PATH, params, self.parse_search)

    def parse_search(self, response: Response) -> Iterator[Any]:
        real_url = rebase(REAL_BASE, response.meta["path"], response.meta["params"])
        result = parse_search(response.body, real_url)
        if not self.source.fetch_details:
            yield from self.handle_page(response, result, self.parse_search)
            return
        summaries = {canonical_item_url(r.external_id): r for r in result.records}
        details: dict[str, ListingRecord | None] = {
            urlsplit(url).path: summaries.get(url) for url in result.detail_urls
        }
        yield from self.handle_page(
            response, result, self.parse_search, details=details, detail_callback=self.parse_item
        )

    def parse_item(self, response: Response) -> Iterator[Any]:
        self.crawler.stats.inc_value("korgwatch/pages")
        real_url = rebase(REAL_BASE, response.meta["detail_of"])
        try:
            record = parse_item(response.body, real_url)
        except ValueError as exc:
            self.record_error(f"{response.url}: {exc}")
            yield from self.fallback(response.meta.get("summary"))
            return
        yield from self.emit(record, response)
