"""Matrixsynth: the Blogger Atom feed (`/feeds/posts/default`), paged by `start-index`/`max-results`.

Feeds, not HTML: Blogger's robots.txt disallows `/search`, and feed entries carry stable post ids. The
feed is newest-first, so an incremental crawl stops at the first page it already knows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawler.pages.matrixsynth import parse_atom_feed, parse_json_feed
from crawler.spiders.base import KorgSpider


class MatrixsynthSpider(KorgSpider):
    name = "matrixsynth"

    async def start(self) -> AsyncIterator[Any]:
        self.load_known()
        for feed in self.source.feeds:
            params = {"max-results": str(self.source.page_size)}
            yield self.page_request(feed, params, self.parse_feed)

    def parse_feed(self, response: Response) -> Iterator[Any]:
        is_json = response.meta["params"].get("alt") == "json"
        result = parse_json_feed(response.body) if is_json else parse_atom_feed(response.body)
        yield from self.handle_page(response, result, self.parse_feed)
