"""`korgwatch enqueue`: open a run per source in the store and push its start message to Redis.

The run row comes first, so that a start message always names a run the store knows; if Redis cannot take
the message, the run is closed `failed` with the reason, and nothing waits for workers that will never come.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from crawler.distributed.dupefilter import DEFAULT_SEEN_TTL
from crawler.distributed.keys import StartMessage, run_key, start_key
from crawler.distributed.settings import REDIS_TIMEOUT


@dataclass(frozen=True, slots=True)
class EnqueuedRun:
    source: str
    run: int
    base_url: str | None


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)


def enqueue_runs(
    redis_url: str,
    db_url: str,
    sources: Sequence[str],
    *,
    base_urls: Mapping[str, str] | None = None,
    full: bool = False,
    ttl: int = DEFAULT_SEEN_TTL,
) -> list[EnqueuedRun]:
    """One new run per source, announced to the workers; raises redis.RedisError if Redis is unreachable."""
    from db.engine import make_engine, session_scope
    from db.migrate import upgrade
    from db.run_ledger import close_runs, needs_recovery, open_run

    base_urls = base_urls or {}
    client = redis_client(redis_url)
    client.ping()  # before any run is opened: a Redis that is down leaves no trace in the store
    upgrade(db_url)
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    try:
        with session_scope(engine) as session:
            # A run that lost work (a dead worker's requests, a killed crawl) makes its source's next run page in
            # full: the same record in the store (db.run_ledger.needs_recovery) for local and distributed crawls.
            whole = {name: full or needs_recovery(session, name) is not None for name in sources}
            runs = [
                EnqueuedRun(name, open_run(session, name, now, full=whole[name]), base_urls.get(name))
                for name in sources
            ]
        try:
            with client.pipeline(transaction=True) as pipe:
                for run in runs:
                    message = StartMessage(
                        run.run, run.source, run.base_url, whole[run.source], now.isoformat()
                    ).dumps()
                    pipe.set(run_key(run.run), message, ex=ttl)
                    pipe.lpush(start_key(run.source), message)
                pipe.execute()
        except redis.RedisError as exc:
            with session_scope(engine) as session:  # no page yet: the runs close `failed`, with the reason
                note = f"ENQUEUE Redis refused the start message: {exc}"
                close_runs(session, [r.run for r in runs], datetime.now(UTC), note)
            raise
    finally:
        engine.dispose()
        client.close()
    return runs
