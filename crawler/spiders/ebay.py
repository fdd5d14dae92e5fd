"""eBay: the Browse API (`item_summary/search`, newest first), then `item/<itemId>` for new or changed items.

Requests carry `meta["ebay_auth"]`; `crawler.middlewares.EbayTokenMiddleware` adds the application token
from the client-credentials grant at `<base_url>/identity/v1/oauth2/token`. Without EBAY_CLIENT_ID and
EBAY_CLIENT_SECRET the source is skipped with one log line: there is nothing to crawl without a token.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

from scrapy.http import Response

from crawler.pages.ebay import parse_item, parse_search
from crawler.pages.records import ListingRecord
from crawler.spiders.base import KorgSpider

SEARCH_PATH = "/buy/browse/v1/item_summary/search"
ITEM_PATH = "/buy/browse/v1/item/{item_id}"
TOKEN_PATH = "/identity/v1/oauth2/token"
CREDENTIALS = ("EBAY_CLIENT_ID", "EBAY_CLIENT_SECRET")


def has_credentials() -> bool:
    return all(os.environ.get(name) for name in CREDENTIALS)


def item_path(record: ListingRecord) -> str:
    """getItem's path for a summary: the RESTful id (`v1|<legacy id>|0`), pipes escaped."""
    item_id = record.extra.get("item_id") or f"v1|{record.external_id}|0"
    return ITEM_PATH.format(item_id=quote(str(item_id), safe=""))


class EbaySpider(KorgSpider):
    name = "ebay"
    summaries_have_body = False

    @property
    def token_url(self) -> str:
        return self.url(TOKEN_PATH)

    def headers(self) -> dict[str, str]:
        return {"X-EBAY-C-MARKETPLACE-ID": self.source.marketplace or "EBAY_US", "Accept": "application/json"}

    async def start(self) -> AsyncIterator[Any]:
        if not has_credentials():
            self.logger.warning("ebay skipped: set EBAY_CLIENT_ID and EBAY_CLIENT_SECRET to crawl the Browse API")
            self.crawler.stats.set_value("korgwatch/skipped", "no eBay credentials")
            return
        self.load_known()
        for query in self.source.queries:
            params = {"q": query, "limit": str(self.source.page_size), "offset": "0", "sort": "newlyListed"}
            yield self.page_request(
                SEARCH_PATH, params, self.parse_search, meta={"ebay_auth": True}, headers=self.headers()
            )

    def carry_meta(self, response: Response) -> dict[str, Any]:
        return {"ebay_auth": True}

    def parse_search(self, response: Response) -> Iterator[Any]:
        result = parse_search(response.body)
        kwargs = {"headers": self.headers()}
        if not self.source.fetch_details:
            yield from self.handle_page(response, result, self.parse_search, request_kwargs=kwargs)
            return
        details = {item_path(record): record for record in result.records}
        for request in self.handle_page(
            response,
            result,
            self.parse_search,
            details=details,
            detail_callback=self.parse_item,
            request_kwargs=kwargs,
        ):
            request.meta["ebay_auth"] = True
            yield request

    def parse_item(self, response: Response) -> Iterator[Any]:
        self.crawler.stats.inc_value("korgwatch/pages")
        try:
            record = parse_item(response.body)
        except ValueError as exc:
            self.record_error(f"{response.url}: {exc}")
            yield from self.fallback(response.meta.get("summary"))
            return
        yield from self.emit(record, response)
