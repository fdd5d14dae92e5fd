"""The shared request queue on a real Redis: a pop whose answer is lost to an outage loses no request.

Redis stopping right after it ran a worker's pop, before the answer reached the worker, used to lose that
request (one listing of 300 in `test_redis_restart_mid_run_makes_workers_wait_and_resume`, now and then). The
pop keeps its request under the pop's token for a while; the worker takes it from there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from crawler.distributed.queue import BusyMarkingQueue


@pytest.fixture
def queue(redis_url: str) -> Iterator[BusyMarkingQueue]:
    server = redis.Redis.from_url(redis_url)
    name = f"queue-test-{uuid.uuid4().hex[:8]}"
    crawler = get_crawler(Spider, {"KORGWATCH_WORKER_NAME": "tester"})
    spider = Spider.from_crawler(crawler, name=name)
    queue = BusyMarkingQueue(server, spider, f"korgwatch-test:{name}:requests")
    yield queue
    for key in server.scan_iter(f"korgwatch-test:{name}:*"):
        server.delete(key)
    server.delete(queue.busy_key)
    server.close()


def test_a_pop_whose_answer_was_lost_is_taken_back_once(queue: BusyMarkingQueue) -> None:
    assert queue.push_unseen(Request("https://example.test/listing/1"), f"{queue.key}:seen", "fp-1", 60)
    queue.script(  # the pop as Redis runs it; its answer never reaches the worker
        keys=[queue.key, queue.busy_key, queue.popped_key("lost")], args=[queue.worker, "busy:0", 60]
    )
    assert len(queue) == 0  # gone from the queue…
    recovered = queue.take_popped("lost")  # …but kept for the worker that took it
    assert recovered is not None and recovered.url == "https://example.test/listing/1"
    assert queue.take_popped("lost") is None  # handed over once


def test_a_pop_that_found_nothing_keeps_nothing(queue: BusyMarkingQueue) -> None:
    assert queue.pop(token="empty") is None
    assert queue.take_popped("empty") is None
