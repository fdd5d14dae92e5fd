"""scrapy-redis's priority queue, whose pop also marks the popping worker busy, in one atomic step.

A run is over when its source's queue is empty and no worker holds a request that could add more. The mark
must be set in the same step as the pop (a Lua script, atomic in Redis): otherwise another worker could see
an empty queue and an idle peer in between, and close a run that is still going.
"""

from __future__ import annotations

import time
from typing import Any

from scrapy import Request
from scrapy_redis.queue import PriorityQueue

from crawler.distributed.keys import busy_key

POP_AND_MARK = """
local found = redis.call('ZRANGE', KEYS[1], 0, 0)
if #found > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, 0)
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return found
"""


class BusyMarkingQueue(PriorityQueue):
    """Requests by priority; popping one says "busy" for this worker in `korgwatch:<source>:busy`."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.worker = spider.crawler.settings.get("KORGWATCH_WORKER_NAME") or "worker"
        self.busy_key = busy_key(spider.name)
        self.script = server.register_script(POP_AND_MARK)

    def pop(self, timeout: int = 0) -> Request | None:
        found = self.script(keys=[self.key, self.busy_key], args=[self.worker, f"busy:{time.time():.3f}"])
        return self._decode_request(found[0]) if found else None
