"""A korgwatch spider as a distributed worker: its runs start from Redis, and every request knows its run.

`worker_spider_class(MatrixsynthSpider)` is the same spider whose `start()` yields nothing at opening: every
half second it pops its source's start messages (pushed by `korgwatch enqueue`) and feeds the spider's own start
requests into the shared queue, tagged with the run. `RunTagMiddleware` carries the run from each response to
the requests and items it yields, and makes a worker that picks up another worker's page adopt that run's
settings (base URL, full or incremental) and reload what the store knows before parsing it. A worker never
closes when idle; it stops on SIGTERM (Scrapy's graceful shutdown: in-flight requests finish, the last batch
is stored).

When is a run over? When its source's start list and request queue are empty and no worker may still add a
request. Each worker says "busy" in Redis while it holds anything of the source (a start message being turned
into requests, a request popped, downloaded or being parsed, a listing not yet stored); the pops set that mark
in the same atomic step.
A busy mark left unrefreshed for the peer timeout is a dead worker's (SIGKILL): its in-flight requests are lost,
so its mark is dropped, the runs it worked on count an error and are marked incomplete in the store, and the
source's next run pages in full to recover them (db.run_ledger.needs_recovery, as for a killed local crawl).
Marks are keyed by `name#nonce`, so a worker restarted under the same name is a new worker, not the old one.
The runs whose start message was taken (`korgwatch:<source>:started`) are then closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any

from redis.exceptions import RedisError
from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.connection import get_redis_from_settings
from twisted.internet import task
from twisted.python.failure import Failure

from crawler.distributed.keys import (
    RUN_META,
    StartMessage,
    StartMessageError,
    busy_key,
    queue_key,
    run_key,
    start_key,
    started_key,
    worker_identity,
)
from crawler.distributed.tracker import request_failed
from crawler.items import ListingItem
from crawler.pipelines import UNSTORED_STAT
from crawler.sources import SourceConfig
from crawler.spiders.base import KorgSpider

logger = logging.getLogger(__name__)
START_BATCH = 16  # start messages popped per poll
DEFAULT_POLL = 0.5  # seconds between looks at Redis for new runs and queued requests

# Pop up to ARGV[1] start messages, mark this worker busy and note their runs as started, in one atomic step
# (as the request queue's pop does): between the pop and its requests reaching the queue, no peer may take the
# run for finished, and a worker killed right after the pop still leaves the run to be closed by the others.
POP_STARTS_AND_MARK = """
local found = redis.call('RPOP', KEYS[1], ARGV[1])
if not found then
  return {}
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
for _, message in ipairs(found) do
  local ok, decoded = pcall(cjson.decode, message)
  if ok and type(decoded) == 'table' and type(decoded['run']) == 'number' then
    redis.call('SADD', KEYS[3], string.format('%d', decoded['run']))
  end
end
return found
"""


def engine_busy(engine: Any) -> bool:
    """Whether the engine holds a request of its spider anywhere: scheduled, downloading, or being parsed.

    `spider_is_idle()` alone has a gap: a downloaded response is no longer the downloader's and not yet the
    scraper's. The engine slot's `inprogress` (not public API) covers a request from its pop to the end of
    its callback, whose new requests are then in the shared queue.
    """
    if not engine.spider_is_idle():
        return True
    slot = getattr(engine, "_slot", None)
    return bool(getattr(slot, "inprogress", None))


class WorkerSpiderMixin:
    """Mixed in before a KorgSpider subclass by `worker_spider_class`."""

    crawler: Any
    source: SourceConfig
    full: bool
    name: str

    def setup_worker(self) -> None:
        self.redis = get_redis_from_settings(self.crawler.settings)
        self.configured_source = self.source
        self.configured_full = self.full
        self.current_run: int | None = None
        self.crawler.signals.connect(self.on_idle, signal=signals.spider_idle)
        self.crawler.signals.connect(self.on_opened, signal=signals.spider_opened)
        self.crawler.signals.connect(self.on_closed, signal=signals.spider_closed)
        settings = self.crawler.settings
        self.poll_interval = settings.getfloat("KORGWATCH_WORKER_POLL", DEFAULT_POLL)
        self.peer_timeout = settings.getfloat("KORGWATCH_PEER_TIMEOUT", 60.0)
        self.worker_name = settings.get("KORGWATCH_WORKER_NAME") or "worker"
        # The busy mark's key: unique per process start, so a worker restarted under the same --name (what
        # Restart=always does) cannot overwrite its dead predecessor's mark and hide that death.
        self.worker_id = worker_identity(self.worker_name)
        self.poller: task.LoopingCall | None = None
        self.pending_starts = 0
        self.redis_down = False
        self.pop_starts = self.redis.register_script(POP_STARTS_AND_MARK)

    def busy(self) -> bool:
        """This worker holds something of its source: a request that may add more, or listings not yet stored."""
        return (
            self.pending_starts > 0
            or engine_busy(self.crawler.engine)
            or (self.crawler.stats.get_value(UNSTORED_STAT) or 0) > 0
        )

    def on_opened(self) -> None:
        self.poller = task.LoopingCall(self.poll)
        self.poller.start(self.poll_interval, now=True)

    def on_closed(self) -> None:
        if self.poller is not None and self.poller.running:
            self.poller.stop()
        with suppress(RedisError):
            self.redis.hdel(busy_key(self.name), self.worker_id)  # a stopped worker adds nothing more

    def busy_mark(self) -> str:
        return f"busy:{time.time():.3f}"

    def mark(self, idle: bool) -> None:
        """Tell the other workers whether this one may still add requests (refreshed every poll)."""
        with suppress(RedisError):
            self.redis.hset(busy_key(self.name), self.worker_id, "idle" if idle else self.busy_mark())

    def peers_idle(self) -> bool:
        """No other live worker holds anything of this source.

        A busy mark older than the peer timeout is a dead worker's (SIGKILLed, its reactor stopped): its
        requests in flight are lost. Its mark goes, the source's next run pages in full to recover them, and
        the runs under way count the loss as an error.
        """
        try:
            marks = self.redis.hgetall(busy_key(self.name))
        except RedisError:
            return False
        now = time.time()
        idle = True
        for raw_worker, raw_mark in marks.items():
            worker = raw_worker.decode() if isinstance(raw_worker, bytes) else str(raw_worker)
            text = raw_mark.decode() if isinstance(raw_mark, bytes) else str(raw_mark)
            if text == "idle" or worker == self.worker_id:
                continue
            try:
                since = float(text.removeprefix("busy:"))
            except ValueError:
                since = 0.0  # not a mark of ours: treat as long silent
            if now - since < self.peer_timeout:
                idle = False
            else:
                self.lose_peer(worker, now - since)
        return idle

    def lose_peer(self, worker: str, silent_for: float) -> None:
        try:
            removed = self.redis.hdel(busy_key(self.name), worker)
        except RedisError:
            return
        if removed:  # another worker may have seen it first
            logger.warning(
                "worker %s of %s silent for %.0f s while busy: taken for dead; its in-flight requests are lost "
                "and the next run pages in full to recover them",
                worker,
                self.name,
                silent_for,
            )
            self.crawler.signals.send_catch_log(
                signal=peer_lost, source=self.name, worker=worker, runs=self.started_runs()
            )

    def poll(self) -> None:
        """Start waiting runs, and ask the engine for the shared queue's requests now.

        Scrapy's engine looks at its scheduler after each response and otherwise only on its 5-second
        heartbeat; an idle worker would leave a fresh run to the others for up to 5 s. The nudge is the
        engine's own `nextcall` (not public API: without it, the heartbeat still does the work, only later).
        """
        for message in self.pop_start_messages():
            self.pending_starts += 1
            deferred_from_coro(self._start_requests_of(message))
        self.mark(idle=not self.busy())
        slot = getattr(self.crawler.engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule()

    async def start(self) -> AsyncIterator[Any]:
        """Nothing at opening: runs arrive as start messages, read when the worker is idle."""
        return
        yield  # pragma: no cover - makes this an async generator

    # -- runs --------------------------------------------------------------------------------------------
    def adopt_run(self, message: StartMessage) -> None:
        """Crawl as `message` says (base URL, full), with what the store knows now."""
        base_url = message.base_url or self.configured_source.base_url
        self.source = replace(self.configured_source, base_url=base_url)
        self.full = message.full or self.configured_full
        self.current_run = message.run
        self.load_known()  # type: ignore[attr-defined]

    def adopt_run_of(self, meta: Mapping[str, Any]) -> int | None:
        """Before fetching or parsing a page of another run, take that run's settings (read from Redis once)."""
        run = meta.get(RUN_META)
        if run is None or run == self.current_run:
            return run
        try:
            data = self.redis.get(run_key(run))
        except RedisError as exc:
            logger.warning("run %s: settings unreadable (%s); crawling it with the current ones", run, exc)
            return run
        if data is None:
            logger.warning("run %s: no settings in Redis (expired?); crawling it with the configured ones", run)
            message = StartMessage(run, self.name)
        else:
            message = StartMessage.loads(data)
        self.adopt_run(message)
        return run

    async def _start_requests_of(self, message: StartMessage) -> None:
        try:
            self.adopt_run(message)
            logger.info("run %d of %s started on this worker (base %s)", message.run, self.name, self.source.base_url)
            async for request in super().start():  # type: ignore[misc]
                if isinstance(request, Request):
                    request.meta[RUN_META] = message.run
                    self.crawler.engine.crawl(request)
        finally:
            self.pending_starts -= 1

    def pop_start_messages(self) -> list[StartMessage]:
        """Take waiting runs (marking this worker busy and noting them as started as they are taken)."""
        try:
            raw = self.pop_starts(
                keys=[start_key(self.name), busy_key(self.name), started_key(self.name)],
                args=[START_BATCH, self.worker_id, self.busy_mark()],
            )
        except RedisError as exc:
            if not self.redis_down:  # once per outage; the scheduler says when Redis is back
                logger.warning("Redis unavailable (%s): no new runs until it answers", exc)
            self.redis_down = True
            return []
        self.redis_down = False
        messages = []
        for data in raw:
            try:
                messages.append(StartMessage.loads(data))
            except StartMessageError as exc:
                self.record_error(f"{start_key(self.name)}: {exc}")  # type: ignore[attr-defined]
        return messages

    def started_runs(self) -> list[int]:
        try:
            return sorted(int(run) for run in self.redis.smembers(started_key(self.name)))
        except RedisError:
            return []

    def queue_empty(self) -> bool:
        try:
            return not self.redis.zcard(queue_key(self.name)) and not self.redis.llen(start_key(self.name))
        except RedisError:
            return False

    def on_idle(self) -> None:
        """Say when the source's crawl is over everywhere (its started runs close); never close the spider."""
        if not self.busy():
            self.mark(idle=True)
            if self.queue_empty() and self.peers_idle():
                runs = self.started_runs()
                self.crawler.signals.send_catch_log(signal=queue_drained, source=self.name, runs=runs)
        raise DontCloseSpider

    def on_error(self, failure: Failure) -> Iterator[ListingItem]:
        request = getattr(failure, "request", None)
        run = request.meta.get(RUN_META) if request is not None else None
        self.crawler.signals.send_catch_log(signal=request_failed, run=run)
        for item in super().on_error(failure):  # type: ignore[misc]
            item.crawl_run = run
            yield item


queue_drained = object()  # signal(source, runs): the source's queues are empty and no live worker is busy
peer_lost = object()  # signal(source, worker): a busy worker went silent for the peer timeout


def worker_spider_class(spider_cls: type[KorgSpider]) -> type[KorgSpider]:
    """`spider_cls` reading its runs from Redis; same name, parsing and callbacks."""

    class Worker(WorkerSpiderMixin, spider_cls):  # type: ignore[valid-type,misc]
        @classmethod
        def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Any:
            spider = super().from_crawler(crawler, *args, **kwargs)
            spider.setup_worker()
            return spider

    Worker.__name__ = Worker.__qualname__ = f"Worker{spider_cls.__name__}"
    return Worker


class RunTagMiddleware:
    """Spider middleware: the run of a response goes onto every request and item its callback yields."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> RunTagMiddleware:
        return cls(crawler)

    def _run_of(self, response: Response) -> int | None:
        spider = self.crawler.spider
        return spider.adopt_run_of(response.meta) if isinstance(spider, WorkerSpiderMixin) else None

    def _tag(self, response: Response, outputs: Iterable[Any], run: int | None) -> Iterator[Any]:
        for output in outputs:
            if run is not None:
                if isinstance(output, Request):
                    output.meta.setdefault(RUN_META, run)
                elif isinstance(output, ListingItem) and output.crawl_run is None:
                    output.crawl_run = run
            yield output

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        yield from self._tag(response, result, self._run_of(response))

    async def process_spider_output_async(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        run = self._run_of(response)
        async for output in result:
            for tagged in self._tag(response, (output,), run):
                yield tagged
