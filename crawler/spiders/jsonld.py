"""Dealer pages with schema.org Product data (JSON-LD or microdata): the configured pages, read as they are.

Each configured URL keeps its own host unless the source has a base URL (`--base-url`), in which case its path
is rebuilt on that base like every other source's links. ItemList links and `rel=next` are followed
the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy.http import Response

from crawler.pages.jsonld import parse_product_page
from crawler.spiders.base import KorgSpider, rebase


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


class JsonldSpider(KorgSpider):
    name = "jsonld"

    def _request(self, real_url: str, page: int, meta: dict[str, Any] | None = None) -> scrapy.Request:
        base = self.source.base_url or _origin(real_url)
        return scrapy.Request(
            rebase(base, real_url),
            callback=self.parse_page,
            errback=self.on_error,
            meta={"real_url": real_url, "page": page, **(meta or {})},
        )

    async def start(self) -> AsyncIterator[Any]:
        self.load_known()
        for page_url in self.source.pages:
            yield self._request(page_url, 1)

    def parse_page(self, response: Response) -> Iterator[Any]:
        real_url: str = response.meta["real_url"]
        result = parse_product_page(response.body, real_url)
        self.crawler.stats.inc_value("korgwatch/pages")
        for error in result.errors:
            self.record_error(f"{response.url}: {error}")
        for record in result.records:
            yield from self.emit(record, response)
        page = response.meta["page"]
        for url in result.detail_urls:
            yield self._request(url, page)
        if result.next_params and page < self.source.page_limit:
            parts = urlsplit(real_url)
            query = "&".join(f"{k}={v}" for k, v in result.next_params.items())
            yield self._request(urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), page + 1)
