"""The notification outbox: events recorded once, one message per target, and its delivery state.

Functions take the caller's session and never commit (the caller owns the transaction). The delivery protocol
(`claim_next` → send → `mark_delivered` / `mark_failed`) gives: a message recorded delivered is never sent
again; a message not recorded delivered stays pending until it is; a process that dies between sending and
recording leaves a lease that is taken over (at once when its process is gone, else when the lease expires),
so that one message to that one target may be sent a second time, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from db.models import Notification, NotifyEvent, NotifyState
from db.run_ledger import owner_alive

NOTIFY_LOCK = 0x6E6F7466  # "notf": the PostgreSQL advisory lock held while collecting events


def lock_collection(session: Session) -> None:
    """One collector at a time on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(NOTIFY_LOCK)))


def get_state(session: Session, key: str) -> str | None:
    row = session.get(NotifyState, key)
    return row.value if row else None


def set_state(session: Session, key: str, value: str) -> None:
    row = session.get(NotifyState, key)
    if row is None:
        session.add(NotifyState(key=key, value=value))
    else:
        row.value = value


def known_event_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of `keys` are already recorded."""
    wanted = list(keys)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(session.scalars(select(NotifyEvent.event_key).where(NotifyEvent.event_key.in_(chunk))))
    return found


def record_event(
    session: Session, key: str, kind: str, details: Mapping[str, Any], now: datetime, crawl_run_id: int | None = None
) -> NotifyEvent:
    event = NotifyEvent(event_key=key, kind=kind, details=dict(details), created_at=now, crawl_run_id=crawl_run_id)
    session.add(event)
    session.flush()
    return event


def events_of_run(session: Session, run_id: int) -> list[NotifyEvent]:
    return list(session.scalars(select(NotifyEvent).where(NotifyEvent.crawl_run_id == run_id).order_by(NotifyEvent.id)))


def enqueue(session: Session, message_key: str, target: str, kind: str, title: str, body: str, now: datetime) -> None:
    """Add one message for one target (once: the key and target are unique)."""
    exists = session.scalar(
        select(Notification.id).where(Notification.message_key == message_key, Notification.target == target)
    )
    if exists is None:
        session.add(
            Notification(
                message_key=message_key,
                target=target,
                kind=kind,
                title=title,
                body=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message this process holds the lease of, to send now."""

    id: int
    target: str
    kind: str
    title: str
    body: str
    attempts: int


def claim_next(session: Session, owner: str, now: datetime, lease: float) -> Claimed | None:
    """Take the lease of the oldest message due, not held by a live sender; None when nothing is due."""
    query = (
        select(Notification)
        .where(
            Notification.status == "pending",
            Notification.next_attempt_at <= now,
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(50)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for row in session.scalars(query):
        held = row.lease_owner is not None and row.lease_until is not None and row.lease_until > now
        if held and row.lease_owner != owner and owner_alive(row.lease_owner or "") is not False:
            continue  # another sender is on it
        row.lease_owner = owner
        row.lease_until = now + timedelta(seconds=lease)
        return Claimed(row.id, row.target, row.kind, row.title, row.body, row.attempts)
    return None


def mark_delivered(session: Session, message_id: int, owner: str, now: datetime) -> bool:
    """Record a send; False when the lease was lost meanwhile (another sender took it over)."""
    result = session.execute(
        update(Notification)
        .where(Notification.id == message_id, Notification.lease_owner == owner, Notification.status == "pending")
        .values(status="delivered", delivered_at=now, lease_owner=None, lease_until=None, last_error=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_failed(session: Session, message_id: int, owner: str, error: str, retry_at: datetime) -> None:
    """Record a failed send: retried at `retry_at`, never dropped."""
    session.execute(
        update(Notification)
        .where(Notification.id == message_id, Notification.lease_owner == owner)
        .values(
            attempts=Notification.attempts + 1,
            last_error=error[:1000],
            next_attempt_at=retry_at,
            lease_owner=None,
            lease_until=None,
        )
    )


def recent(session: Session, limit: int = 50) -> list[Notification]:
    """The newest messages, delivered or not."""
    return list(session.scalars(select(Notification).order_by(Notification.id.desc()).limit(limit)))


@dataclass(frozen=True, slots=True)
class TargetHealth:
    """Per target: messages waiting, how many of them failed at least once, and the last error."""

    target: str
    pending: int
    failing: int
    delivered: int
    last_error: str | None
    next_attempt_at: datetime | None


def target_health(session: Session) -> list[TargetHealth]:
    rows = session.execute(
        select(
            Notification.target,
            func.count().filter(Notification.status == "pending"),
            func.count().filter(Notification.status == "pending", Notification.attempts > 0),
            func.count().filter(Notification.status == "delivered"),
            func.min(Notification.next_attempt_at).filter(Notification.status == "pending"),
        ).group_by(Notification.target)
    ).all()
    health: list[TargetHealth] = []
    for target, pending, failing, delivered, next_at in rows:
        last_error = session.scalar(
            select(Notification.last_error)
            .where(
                Notification.target == target,
                Notification.status == "pending",
                or_(Notification.last_error.is_not(None)),
            )
            .order_by(Notification.id.desc())
            .limit(1)
        )
        health.append(TargetHealth(target, pending, failing, delivered, last_error, next_at))
    return health
