"""Reverb: the public listings API (`/api/listings?query=...`, `Accept-Version: 3.0`), newest first.

One query per model (config) so that none runs into Reverb's 50-page cap; the next page comes from the
parameters of `_links.next`, rebuilt on the configured base URL. Search results carry the full description,
so no detail request is needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawler.pages.reverb import parse_listings
from crawler.spiders.base import KorgSpider

LISTINGS_PATH = "/api/listings"
HEADERS = {
    "Accept-Version": "3.0",
    "Accept": "application/hal+json",
    "Content-Type": "application/hal+json",
}


class ReverbSpider(KorgSpider):
    name = "reverb"

    async def start(self) -> AsyncIterator[Any]:
        self.load_known()
        for query in self.source.queries:
            params = {
                "query": query,
                "per_page": str(self.source.page_size),
                "sort": "published_at|desc",
                "page": "1",
            }
            yield self.page_request(LISTINGS_PATH, params, self.parse_listings, headers=HEADERS)

    def parse_listings(self, response: Response) -> Iterator[Any]:
        result = parse_listings(response.body)
        yield from self.handle_page(response, result, self.parse_listings, request_kwargs={"headers": HEADERS})
