"""scrapy-redis's scheduler, made to ride out a Redis restart instead of crashing the worker.

The shared queue and the per-run duplicate filter are scrapy-redis's (`scrapy_redis.scheduler.Scheduler`);
this subclass adds what a long-running worker needs: a request that cannot be pushed while Redis is down is
kept in memory and pushed once Redis answers again; a pop that fails returns no request (the engine asks
again on its next heartbeat); the outage is logged once when it starts and once when it ends. The queue always
persists: workers come and go, the crawl stays. Stats are counted without the `spider=` argument that
Scrapy 2.19 deprecates.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from contextlib import suppress
from typing import Any

from redis.exceptions import RedisError
from scrapy import Request
from scrapy_redis.scheduler import Scheduler

logger = logging.getLogger(__name__)


class ResilientRedisScheduler(Scheduler):
    """The shared request queue; survives Redis outages without losing the requests this worker made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["persist"] = True  # never flush the shared queue when one worker stops
        super().__init__(*args, **kwargs)
        self.backlog: deque[Request] = deque()
        self.down_since: float | None = None
        self.pop_token: str | None = None  # a pop whose answer was lost to an outage: it may hold a request

    # -- Redis health ------------------------------------------------------------------------------------
    def _down(self, exc: RedisError) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning("Redis unavailable (%s): waiting; new requests are kept in memory", exc)
        if self.stats:
            self.stats.inc_value("korgwatch/redis_errors")

    def _up(self, pushed: int) -> None:
        if self.down_since is not None:
            took = time.monotonic() - self.down_since
            logger.warning("Redis back after %.1f s; %d kept requests pushed", took, pushed)
            self.down_since = None

    def _push(self, request: Request) -> bool:
        """Queue the request unless this run has seen it; the check and the push are one atomic step."""
        if request.dont_filter:
            self.queue.push(request)
        elif not self.queue.push_unseen(
            request, self.df.key_for(request), self.df.request_fingerprint(request), self.df.ttl
        ):
            self.df.log(request, self.spider)
            if self.stats:
                self.stats.inc_value("dupefilter/filtered")
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def _drain_backlog(self) -> int:
        """Push the requests kept while Redis was away, oldest first; how many there were."""
        drained = 0
        while self.backlog:
            self._push(self.backlog[0])
            self.backlog.popleft()
            drained += 1
        return drained

    def _pop(self) -> Request | None:
        """The next request; first the one a pop took from the queue if its answer was lost to an outage."""
        if self.pop_token is not None:
            recovered = self.queue.take_popped(self.pop_token)
            self.pop_token = None
            if recovered is not None:
                return recovered
        self.pop_token = uuid.uuid4().hex
        request = self.queue.pop(self.idle_before_close, token=self.pop_token)
        token, self.pop_token = self.pop_token, None
        if request is not None:
            with suppress(RedisError):  # the kept copy expires by itself
                self.queue.server.delete(self.queue.popped_key(token))
        return request

    # -- the scheduler interface -------------------------------------------------------------------------
    def enqueue_request(self, request: Request) -> bool:
        try:
            drained = self._drain_backlog()
            pushed = self._push(request)
        except RedisError as exc:
            self._down(exc)
            self.backlog.append(request)
            return True
        self._up(drained)
        return pushed

    def next_request(self) -> Request | None:
        try:
            drained = self._drain_backlog()
            request = self._pop()
        except RedisError as exc:
            self._down(exc)
            return None
        except ValueError as exc:  # not JSON, or a class we refuse to import: dropped, said, never run
            logger.error("%s: unreadable queued request dropped: %s", self.queue.key, exc)
            if self.stats:
                self.stats.inc_value("korgwatch/errors")
            return None
        self._up(drained)
        if request is not None:
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis")
            adopt = getattr(self.spider, "adopt_run_of", None)
            if adopt is not None:  # a worker crawls another worker's run as that run says (base URL, ...)
                adopt(request.meta)
        return request

    def has_pending_requests(self) -> bool:
        if self.backlog:
            return True
        try:
            return len(self) > 0
        except RedisError as exc:
            self._down(exc)
            return False
