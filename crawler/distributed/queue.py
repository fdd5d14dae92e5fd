"""scrapy-redis's priority queue, whose pop also marks the popping worker busy, in one atomic step.

A run is over when its source's queue is empty and no worker holds a request that could add more. The mark
must be set in the same step as the pop (a Lua script, atomic in Redis): otherwise another worker could see
an empty queue and an idle peer in between, and close a run that is still going. Likewise a request's
fingerprint is added to the duplicate filter in the same step as the request to the queue: were Redis to go
away between the two, the request would be kept to push again later and then be refused as already seen. And
a popped request is kept for a while under the pop's token: were Redis to go away after the pop but before its
answer reached the worker, the worker takes it from there (`take_popped`) instead of losing it.
"""

from __future__ import annotations

import time
from typing import Any

from scrapy import Request
from scrapy_redis.queue import PriorityQueue

from crawler.distributed.keys import busy_key, worker_identity

POP_AND_MARK = """
local found = redis.call('ZRANGE', KEYS[1], 0, 0)
if #found > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, 0)
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('SET', KEYS[3], found[1], 'EX', ARGV[3])
end
return found
"""
POPPED_TTL = 3600  # seconds a popped request is kept for a worker that lost the answer to its pop


PUSH_UNSEEN = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""


class BusyMarkingQueue(PriorityQueue):
    """Requests by priority; popping one says "busy" for this worker in `korgwatch:<source>:busy`."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.worker = worker_identity(spider.crawler.settings.get("KORGWATCH_WORKER_NAME") or "worker")
        self.busy_key = busy_key(spider.name)
        self.script = server.register_script(POP_AND_MARK)
        self.push_script = server.register_script(PUSH_UNSEEN)

    def push_unseen(self, request: Request, seen_key: str, fingerprint: str, ttl: int) -> bool:
        """Queue `request` unless `fingerprint` is in the set `seen_key`, adding it there: False if it was."""
        data = self._encode_request(request)
        return bool(self.push_script(keys=[seen_key, self.key], args=[fingerprint, ttl, -request.priority, data]))

    def pop(self, timeout: int = 0, token: str = "") -> Request | None:
        """The first request, also kept under `token` for a while: should Redis go away after taking it from the
        queue but before the answer arrives, `take_popped(token)` gets it back instead of losing it."""
        found = self.script(
            keys=[self.key, self.busy_key, self.popped_key(token)],
            args=[self.worker, f"busy:{time.time():.3f}", POPPED_TTL],
        )
        return self._decode_request(found[0]) if found else None

    def popped_key(self, token: str) -> str:
        return f"{self.key}:popped:{token}"

    def take_popped(self, token: str) -> Request | None:
        """The request a pop under `token` took, if it did (its answer lost); it is handed over once."""
        data = self.server.getdel(self.popped_key(token))
        return self._decode_request(data) if data else None
