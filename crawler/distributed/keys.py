"""Redis key names and the start message: the one place that says what korgwatch keeps in Redis.

Everything lives under `korgwatch:` so that one Redis database can serve other programs too:
  korgwatch:<source>:start           list of start messages (JSON), one per enqueued run, LPUSH/RPOP
  korgwatch:<source>:requests        scrapy-redis request queue (sorted set), shared by every worker
  korgwatch:<source>:seen:<run>      per-run duplicate filter (set of request fingerprints), expires
  korgwatch:run:<run>                the run's start message, so that every worker crawls it alike, expires
  korgwatch:<source>:busy            hash worker#nonce → "idle" or "busy:<unix time>": who may still add requests
  korgwatch:<source>:started         set of the runs whose start message a worker took and that are not closed
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

PREFIX = "korgwatch"
#: scrapy-redis formats these with the spider (= source) name.
QUEUE_KEY = PREFIX + ":%(spider)s:requests"
DUPEFILTER_KEY = PREFIX + ":%(spider)s:seen"
RUN_META = "korgwatch_run"  # request.meta key carrying the crawl run id


def start_key(source: str) -> str:
    return f"{PREFIX}:{source}:start"


def queue_key(source: str) -> str:
    return QUEUE_KEY % {"spider": source}


#: Drawn once per process: a worker restarted under the same name gets a new identity.
PROCESS_NONCE = secrets.token_hex(4)


def worker_identity(name: str) -> str:
    """`name#nonce`, the key of this process's busy mark: its `--name` plus a nonce drawn at its start."""
    return f"{name}#{PROCESS_NONCE}"


def busy_key(source: str) -> str:
    return f"{PREFIX}:{source}:busy"


def started_key(source: str) -> str:
    return f"{PREFIX}:{source}:started"


def run_key(run: int) -> str:
    return f"{PREFIX}:run:{run}"


class StartMessageError(ValueError):
    """A start message that is not ours (bad JSON, missing run id)."""


@dataclass(frozen=True, slots=True)
class StartMessage:
    """What `korgwatch enqueue` pushes for one run of one source; a worker turns it into start requests."""

    run: int
    source: str
    base_url: str | None = None
    full: bool = False
    enqueued_at: str = ""

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, data: bytes | str) -> StartMessage:
        try:
            raw: Any = json.loads(data)
            if not isinstance(raw, dict):
                raise TypeError("not an object")
            run, source = raw["run"], raw["source"]
            if not isinstance(run, int) or not isinstance(source, str):
                raise TypeError("run must be an integer and source a string")
            base_url = raw.get("base_url")
            if base_url is not None and not isinstance(base_url, str):
                raise TypeError("base_url must be a string")
            return cls(run, source, base_url, bool(raw.get("full", False)), str(raw.get("enqueued_at", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise StartMessageError(f"bad start message {str(data)[:200]!r}: {exc}") from exc
