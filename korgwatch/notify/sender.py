"""Send the queued messages through Apprise, recording each delivery: at most one repeat after a crash.

The order is claim (a lease, committed) → send → record (committed). A process killed after sending and before
recording leaves the message pending under its lease; the next sender takes the lease over (at once when the
holder's process is gone, after the lease otherwise) and sends that one message again. Nothing recorded as
delivered is sent again, and nothing pending is dropped: a failing target is retried with doubling delays.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import apprise
from sqlalchemy import Engine

from db import notifications as outbox
from db.engine import session_scope
from db.run_ledger import process_owner
from korgwatch.notify.config import MissingSecret, NotifyConfig, Target

PAUSE_AFTER_SEND_ENV = "KORGWATCH_NOTIFY_PAUSE_AFTER_SEND"  # tests: seconds to wait between sending and recording
QUIET_LOGGERS = ("apprise", "urllib3", "requests")
LEASE_SECONDS = 300.0  # longer than any one send (Apprise's own timeouts are shorter)


@dataclass
class SendReport:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver(target: Target, title: str, body: str) -> str | None:
    """Send one message to one target; None on success, else the reason (secrets redacted)."""
    try:
        url = target.resolve()
    except MissingSecret as exc:
        return str(exc)
    sender = apprise.Apprise()
    # Apprise's and urllib3's lines may quote the URL, secrets and all: kept out of korgwatch's logs while sending.
    quiet = [logging.getLogger(name) for name in QUIET_LOGGERS]
    saved = [logger.propagate for logger in quiet]
    for logger in quiet:
        logger.propagate = False
    try:
        with apprise.LogCapture(level=logging.WARNING) as log:
            if not sender.add(url):
                return target.redact(f"target {target.name}: not a URL Apprise knows ({target.shown})")
            ok = sender.notify(title=title, body=body)
            captured = log.getvalue()
    finally:
        for logger, propagate in zip(quiet, saved, strict=True):
            logger.propagate = propagate
    if ok:
        return None
    reason = " ".join(captured.split())[-400:] or "the service did not accept the message"
    return target.redact(f"target {target.name}: {reason}")


def retry_delay(config: NotifyConfig, attempts: int) -> float:
    """Seconds before the next try after `attempts` failures: first, 2×first, 4×first… up to max."""
    return float(min(config.retry_max, config.retry_base * 2 ** max(0, attempts - 1)))


def send_pending(
    engine: Engine,
    config: NotifyConfig,
    *,
    owner: str | None = None,
    limit: int | None = None,
    send: Callable[[Target, str, str], str | None] = deliver,
) -> SendReport:
    """Send every message due now (or `limit` of them), one at a time, recording each."""
    owner = owner or process_owner()
    pause = float(os.environ.get(PAUSE_AFTER_SEND_ENV) or 0)
    report = SendReport()
    while limit is None or report.delivered + report.failed < limit:
        now = datetime.now(UTC)
        with session_scope(engine) as session:
            claimed = outbox.claim_next(session, owner, now, LEASE_SECONDS)
        if claimed is None:
            break
        target = config.target(claimed.target)
        if target is None:
            error: str | None = f"target {claimed.target}: no longer in {config.path or 'the notify config'}"
        else:
            try:
                error = send(target, claimed.title, claimed.body)
            except Exception as exc:  # a plugin's own bug must not stop the others: retried like any failure
                error = target.redact(f"target {target.name}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        if error is None and pause:
            print(
                f"notify: sent message {claimed.id}, pausing {pause:g}s before recording", file=sys.stderr, flush=True
            )
            time.sleep(pause)
        now = datetime.now(UTC)
        with session_scope(engine) as session:
            if error is None:
                outbox.mark_delivered(session, claimed.id, owner, now)
                report.delivered += 1
            else:
                retry_at = now + timedelta(seconds=retry_delay(config, claimed.attempts + 1))
                outbox.mark_failed(session, claimed.id, owner, error, retry_at)
                report.failed += 1
                report.errors.append(error)
    return report


def notify_once(engine: Engine, config: NotifyConfig) -> tuple[int, SendReport]:
    """Collect new events and send what is due: what the scheduler calls after each crawl run."""
    from korgwatch.notify.events import collect

    if not config.targets:
        return 0, SendReport()
    with session_scope(engine) as session:
        collected = collect(session, config)
    return collected.messages, send_pending(engine, config)
