"""scrapy-redis's duplicate filter, scoped to one crawl run.

scrapy-redis keeps one fingerprint set per spider for ever (or clears it when a crawl closes, which a shared,
long-running crawl never does). Listings change, so the next run must fetch the same pages again; within a run
no page may be fetched twice, whichever worker asks. Each request carries its run id in `meta`, and its
fingerprint goes into that run's own set, which expires after `KORGWATCH_SEEN_TTL` seconds (default 7 days).
"""

from __future__ import annotations

from typing import Any, Self

from scrapy import Request
from scrapy_redis.connection import get_redis_from_settings
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.distributed.keys import DUPEFILTER_KEY, RUN_META

DEFAULT_SEEN_TTL = 7 * 24 * 3600


class RunScopedDupeFilter(RFPDupeFilter):
    """One Redis set of request fingerprints per (source, run)."""

    def __init__(self, server: Any, key: str, debug: bool = False, ttl: int = DEFAULT_SEEN_TTL) -> None:
        super().__init__(server, key, debug)
        self.ttl = ttl

    @classmethod
    def from_spider(cls, spider: Any) -> Self:
        settings = spider.settings
        key = settings.get("SCHEDULER_DUPEFILTER_KEY", DUPEFILTER_KEY) % {"spider": spider.name}
        return cls(
            get_redis_from_settings(settings),
            key=key,
            debug=settings.getbool("DUPEFILTER_DEBUG"),
            ttl=settings.getint("KORGWATCH_SEEN_TTL", DEFAULT_SEEN_TTL),
        )

    def key_for(self, request: Request) -> str:
        run = request.meta.get(RUN_META)
        return f"{self.key}:{run if run is not None else 'none'}"

    def request_seen(self, request: Request) -> bool:
        key = self.key_for(request)
        with self.server.pipeline(transaction=False) as pipe:
            pipe.sadd(key, self.request_fingerprint(request))
            pipe.expire(key, self.ttl)
            added, _ = pipe.execute()
        return bool(added == 0)

    def clear(self) -> None:
        """Forget every run's fingerprints of this spider (never called by a persistent worker)."""
        for key in self.server.scan_iter(match=f"{self.key}:*"):
            self.server.delete(key)
