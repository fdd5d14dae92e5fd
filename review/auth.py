"""Who may use the review page over the network: a strong password, a throttle on guesses, a clean name.

The password (`KORGWATCH_REVIEW_TOKEN`) is the only secret, so a short one is refused for a network bind,
and each client that keeps guessing is slowed down and then locked out for a while. The basic-auth user name
becomes the reviewer's name in the append-only log: control characters (newlines forge log lines) are
dropped and it is capped, so it always fits the log's column on every backend.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_TOKEN_LENGTH = 16  # characters; `secrets.token_urlsafe(24)` gives 32
MAX_USER_LENGTH = 64  # the log's reviewer column holds 128


def weak_token_reason(token: str) -> str | None:
    """Why `token` is too weak to guard a network bind, or None when it will do."""
    if len(token) < MIN_TOKEN_LENGTH:
        return f"the review password has {len(token)} characters; a network bind needs at least {MIN_TOKEN_LENGTH}"
    if len(set(token)) < 6:
        return "the review password repeats too few characters to be guessed slowly"
    return None


def clean_user(name: str, fallback: str = "reviewer") -> str:
    """The user name as the review log keeps it: printable, one line, single spaces, at most 64 characters."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in name)
    cleaned = " ".join(kept.split())[:MAX_USER_LENGTH].strip()
    return cleaned or fallback


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@dataclass
class AuthThrottle:
    """Failed sign-ins per client: the first `free` cost nothing, then each waits longer (doubling from
    `delay`, up to `max_delay` seconds), and `lock_after` failures lock the client out for `lockout` seconds.
    A success clears the client's record; records idle for `forget` seconds are dropped."""

    free: int = 5
    delay: float = 0.5
    max_delay: float = 8.0
    lock_after: int = 20
    lockout: float = 900.0
    forget: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _clients: dict[str, _Record] = field(default_factory=dict)

    def locked_for(self, client: str) -> float:
        """Seconds the client is still locked out (0 when it may try)."""
        record = self._clients.get(client)
        return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> float:
        """Count a failure; returns how long to wait before answering it."""
        now = self.clock()
        self._prune(now)
        record = self._clients.setdefault(client, _Record())
        record.failures += 1
        record.last = now
        if record.failures >= self.lock_after:
            record.locked_until = now + self.lockout
        extra = record.failures - self.free
        return 0.0 if extra <= 0 else min(self.max_delay, self.delay * 2 ** (extra - 1))

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def _prune(self, now: float) -> None:
        if len(self._clients) < 1024:
            return
        for client, record in list(self._clients.items()):
            if now - record.last > self.forget and record.locked_until <= now:
                del self._clients[client]
