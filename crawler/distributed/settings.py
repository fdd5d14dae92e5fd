"""The Scrapy settings that turn a crawl into a distributed worker (layered on a source's own settings)."""

from __future__ import annotations

from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry

from crawler.distributed.keys import DUPEFILTER_KEY, QUEUE_KEY

REDIS_TIMEOUT = 5.0  # seconds; a Redis call blocks the reactor, so an outage must fail fast and be retried later


def worker_settings(
    redis_url: str,
    worker_name: str,
    *,
    flush_interval: float = 2.0,
    batch_size: int = 50,
    peer_timeout: float = 60.0,
) -> dict[str, Any]:
    """scrapy-redis's scheduler (ours, resilient) and run-scoped duplicate filter, JSON-serialised requests,
    the run ledger, no close on idle or timeout, and small store batches (a killed worker loses little)."""
    return {
        "SCHEDULER": "crawler.distributed.scheduler.ResilientRedisScheduler",
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_QUEUE_KEY": QUEUE_KEY,
        "SCHEDULER_QUEUE_CLASS": "crawler.distributed.queue.BusyMarkingQueue",
        "SCHEDULER_DUPEFILTER_KEY": DUPEFILTER_KEY,
        "DUPEFILTER_CLASS": "crawler.distributed.dupefilter.RunScopedDupeFilter",
        "SCHEDULER_SERIALIZER": "crawler.distributed.serializer",
        "REDIS_URL": redis_url,
        "REDIS_PARAMS": {
            "socket_timeout": REDIS_TIMEOUT,
            "socket_connect_timeout": REDIS_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),  # our scheduler waits for Redis; redis-py must not block retrying
            "health_check_interval": 15,
        },
        "SPIDER_MIDDLEWARES": {"crawler.distributed.worker.RunTagMiddleware": 950},
        "EXTENSIONS": {
            "scrapy.extensions.telnet.TelnetConsole": None,
            "crawler.distributed.tracker.RunTracker": 600,
        },
        "SPIDERMON_ENABLED": False,  # monitors judge a finished crawl; a worker's runs are judged by their counts
        "CLOSESPIDER_TIMEOUT": 0,
        "KORGWATCH_DISTRIBUTED": True,
        "KORGWATCH_WORKER_NAME": worker_name,
        "KORGWATCH_RUN_FLUSH_INTERVAL": flush_interval,
        "KORGWATCH_PEER_TIMEOUT": peer_timeout,
        "KORGWATCH_BATCH_SIZE": batch_size,
    }
