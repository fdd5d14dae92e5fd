"""Turn what the store already records into notification events and queued messages, once each.

Nothing here is called from ingest or the crawler: the events are read from the committed rows (appearances
with the kind ingest classified, flags, closed crawl runs, the open queue), so an event cannot be lost by a
process dying after its listing was stored. Each event has a key made from its row; collecting again, or from
a second notifier, records nothing twice. Events from the moment notifications were first collected on: the
first collection on a store notes the time, so switching notifications on does not send the whole history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from db import notifications as outbox
from db.models import Appearance, CrawlRun, Flag, Instrument, Listing, NotifyEvent, Source
from db.watches import WatchSpec, list_watches
from korgwatch.notify.config import NotifyConfig

SINCE_KEY = "collect_since"
LAST_PASS_KEY = "last_pass"
LATE_COMMIT_MARGIN = timedelta(hours=1)
BACKLOG_KEY = "backlog_told"
APPEARANCE_EVENTS = {"new": "new_sighting", "duplicate_sale": "duplicate_sale", "repost": "repost"}
FAILED_OUTCOMES = ("failed", "timed_out", "interrupted")
Found = tuple[str, str, dict[str, Any], int | None]  # event key, kind, details, the crawl run it came from


@dataclass(frozen=True, slots=True)
class Collected:
    events: int
    messages: int


def _money(price: Any, currency: str | None) -> str:
    return f"{price} {currency or ''}".strip() if price is not None else "no price"


def _link(config: NotifyConfig, listing_id: int) -> str:
    return f"{config.public_base_url}/listing/{listing_id}" if config.public_base_url else ""


def _run_of(session: Session, source_id: int, at: datetime) -> int | None:
    """The crawl run of `source_id` that was open at `at` (the run that stored the row), if any."""
    return session.scalar(
        select(CrawlRun.id)
        .where(
            CrawlRun.source_id == source_id,
            CrawlRun.started_at <= at,
            or_(CrawlRun.finished_at.is_(None), CrawlRun.finished_at >= at),
        )
        .order_by(CrawlRun.started_at.desc())
        .limit(1)
    )


def _listing_line(config: NotifyConfig, listing: Listing, source: str) -> str:
    link = _link(config, listing.id)
    parts = [f"{listing.title[:140]} — {source}, {_money(listing.price, listing.currency)}", listing.url]
    if listing.seller:
        parts.insert(1, f"seller {listing.seller[:80]}")
    if link:
        parts.append(f"review: {link}")
    return "; ".join(parts)


def _earlier(session: Session, appearance: Appearance) -> str:
    """The instrument's previous appearance, with its price: what a duplicate sale or repost repeats."""
    row = session.execute(
        select(Listing.url, Listing.price, Listing.currency, Appearance.seen_at)
        .join(Listing, Listing.id == Appearance.listing_id)
        .where(Appearance.instrument_id == appearance.instrument_id, Appearance.id != appearance.id)
        .where(Appearance.seen_at <= appearance.seen_at)
        .order_by(Appearance.seen_at.desc(), Appearance.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return ""
    return f"earlier: {row.url} ({row.seen_at:%Y-%m-%d}, {_money(row.price, row.currency)})"


def _candidates(session: Session, config: NotifyConfig, since: datetime, floor: datetime) -> list[Found]:
    """Every (key, kind, details, crawl run) the store shows since `since`, recorded or not.

    `floor` is when notifications started: nothing older is told, even when reviewed later.
    """
    found: list[Found] = []
    rows = session.execute(
        select(Appearance, Listing, Instrument.model, Instrument.serial, Source.name, Source.id)
        .join(Listing, Listing.id == Appearance.listing_id)
        .join(Instrument, Instrument.id == Appearance.instrument_id)
        .join(Source, Source.id == Listing.source_id)
        .where(
            or_(Appearance.created_at >= since, Appearance.reviewed_at >= since),  # counted after review
            Appearance.created_at >= floor,
            Appearance.status != "dismissed",
        )
        .order_by(Appearance.id)
    ).all()
    watches = list_watches(session)
    hit_listings: set[tuple[int, int]] = set()
    for appearance, listing, model, serial, source, source_id in rows:
        run = _run_of(session, source_id, appearance.created_at)
        base = {
            "model": model,
            "serial": serial,
            "source": source,
            "price": str(listing.price) if listing.price is not None else None,
            "listing_id": listing.id,
            "line": f"{model} {serial}: {_listing_line(config, listing, source)}",
        }
        kind = APPEARANCE_EVENTS[appearance.kind]
        if kind != "new_sighting" or appearance.status == "counted":  # a flagged first sighting: after review
            details = dict(base)
            if kind != "new_sighting":
                details["line"] = f"{base['line']}; {_earlier(session, appearance)}"
            found.append((f"{kind}:appearance:{appearance.id}", kind, details, run))
        for watch in watches:
            if watch.model != model and watch.low == "":
                continue
            how = _watch_match(watch, model, appearance.detected_serial, listing)
            if how and (watch.id, listing.id) not in hit_listings:
                hit_listings.add((watch.id, listing.id))
                found.append(_watch_event(config, watch, listing, source, how, base, run))
    if watches:  # listings with no recognised serial can still show a watched one in their text
        listings = session.execute(
            select(Listing, Source.name, Source.id)
            .join(Source, Source.id == Listing.source_id)
            .where(Listing.first_seen >= since)
            .order_by(Listing.id)
        ).all()
        for listing, source, source_id in listings:
            for watch in watches:
                if (watch.id, listing.id) in hit_listings or not watch.in_text(f"{listing.title}\n{listing.body}"):
                    continue
                hit_listings.add((watch.id, listing.id))
                base = {
                    "model": watch.model,
                    "serial": watch.low,
                    "source": source,
                    "listing_id": listing.id,
                    "price": str(listing.price) if listing.price is not None else None,
                }
                run = _run_of(session, source_id, listing.first_seen)
                found.append(_watch_event(config, watch, listing, source, "in the listing's text", base, run))
    flags = session.execute(
        select(Flag, Listing, Source.name, Source.id, Appearance.detected_model, Appearance.detected_serial)
        .join(Listing, Listing.id == Flag.listing_id)
        .join(Source, Source.id == Listing.source_id)
        .outerjoin(Appearance, Appearance.id == Flag.appearance_id)
        .where(Flag.created_at >= since)
        .order_by(Flag.id)
    ).all()
    for flag, listing, source, source_id, model, serial in flags:
        message = str((flag.details or {}).get("message") or flag.code)[:300]
        details = {
            "model": model,
            "serial": serial,
            "source": source,
            "flag": flag.code,
            "price": str(listing.price) if listing.price is not None else None,
            "listing_id": listing.id,
            "line": f"{flag.code}: {message}; {_listing_line(config, listing, source)}",
        }
        found.append(
            (f"flag_opened:flag:{flag.id}", "flag_opened", details, _run_of(session, source_id, flag.created_at))
        )
    runs = session.execute(
        select(CrawlRun, Source.name)
        .join(Source, Source.id == CrawlRun.source_id)
        .where(CrawlRun.finished_at >= since, CrawlRun.outcome.in_(("degraded", *FAILED_OUTCOMES)))
        .order_by(CrawlRun.id)
    ).all()
    for closed, source in runs:
        kind = "crawl_degraded" if closed.outcome == "degraded" else "crawl_failed"
        tail = " ".join((closed.log_tail or "").split())[-300:]
        line = f"{source}: crawl run {closed.id} {closed.outcome} ({closed.pages} pages, {closed.errors} errors)"
        found.append((f"{kind}:run:{closed.id}", kind, {"source": source, "line": f"{line}. {tail}".strip()}, None))
    return found


def _watch_match(watch: WatchSpec, model: str, serial: str, listing: Listing) -> str:
    if watch.model != model:
        return ""
    if watch.in_range(serial):
        return f"serial {serial}" if watch.low else "model"
    if watch.neighbour(serial):
        return f"serial {serial}, one edit from {watch.low}"
    if watch.in_text(f"{listing.title}\n{listing.body}"):
        return f"{watch.low} in the listing's text"
    return ""


def _watch_event(
    config: NotifyConfig,
    watch: WatchSpec,
    listing: Listing,
    source: str,
    how: str,
    base: dict[str, Any],
    run: int | None,
) -> Found:
    note = f" ({watch.note})" if watch.note else ""
    evidence = (listing.extra or {}).get("evidence") if isinstance(listing.extra, dict) else None
    line = f"watched {watch.describe()}{note}: {how}; {_listing_line(config, listing, source)}"
    if evidence:
        line += f"; evidence: {evidence}"
    details = {**base, "line": line}
    return (f"watch_hit:watch:{watch.id}:listing:{listing.id}", "watch_hit", details, run)


def collect(session: Session, config: NotifyConfig, now: datetime | None = None) -> Collected:
    """Record new events and queue their messages (digests for closed runs); the caller commits."""
    now = now or datetime.now(UTC)
    outbox.lock_collection(session)
    floor_text = outbox.get_state(session, SINCE_KEY)
    if floor_text is None:
        outbox.set_state(session, SINCE_KEY, now.isoformat())
        floor = now
    else:
        floor = datetime.fromisoformat(floor_text)
    # Rows from the last pass on, less a margin for transactions that committed after it with earlier times;
    # rows seen twice are recorded once (by key), so the margin costs a re-read, never a repeat.
    last_text = outbox.get_state(session, LAST_PASS_KEY)
    since = max(floor, datetime.fromisoformat(last_text) - LATE_COMMIT_MARGIN) if last_text else floor
    outbox.set_state(session, LAST_PASS_KEY, now.isoformat())
    found = _candidates(session, config, since, floor)
    found += _backlog(session, config, now)
    known = outbox.known_event_keys(session, [key for key, *_ in found])
    messages = 0
    loose: dict[str, list[NotifyEvent]] = defaultdict(list)  # digest events outside any run, per target
    events = 0
    for key, kind, details, run in found:
        if key in known:
            continue
        known.add(key)
        if run is not None and outbox.known_event_keys(session, [f"digest:run:{run}"]):
            run = None  # its run's digest went already (a sighting counted after review): in this pass's digest
        event = outbox.record_event(session, key, kind, details, now, crawl_run_id=run)
        events += 1
        for target, mode in config.routes({"kind": kind, **details}).items():
            if mode == "interval":
                continue  # goes in the target's next interval digest (`_interval_digests`)
            if mode == "run" and run is not None:
                continue  # goes in the run's digest when the run is closed
            if mode == "run":
                loose[target].append(event)
                continue
            outbox.enqueue(session, key, target, kind, _title(kind, details), details["line"], now)
            messages += 1
    for target, batch in loose.items():
        key = f"digest:events:{batch[0].id}-{batch[-1].id}"
        outbox.enqueue(session, key, target, "digest", *_digest(batch, "korgwatch: new listings"), now)
        messages += 1
    messages += _run_digests(session, config, since, now)
    messages += _interval_digests(session, config, now)
    return Collected(events, messages)


def _backlog(session: Session, config: NotifyConfig, now: datetime) -> list[Found]:
    """One event each time the open queue reaches the threshold (again only after it fell below)."""
    if config.review_backlog is None:
        return []
    open_flags = session.scalar(select(func.count()).select_from(Flag).where(Flag.status == "open")) or 0
    told = outbox.get_state(session, BACKLOG_KEY)
    if open_flags < config.review_backlog:
        if told is not None and told != "0":
            outbox.set_state(session, BACKLOG_KEY, "0")
        return []
    if told not in (None, "0"):
        return []
    outbox.set_state(session, BACKLOG_KEY, now.isoformat())
    line = f"the review queue holds {open_flags} open flags (threshold {config.review_backlog})"
    if config.public_base_url:
        line += f": {config.public_base_url}/"
    return [(f"review_backlog:{now.isoformat()}", "review_backlog", {"line": line}, None)]


def _title(kind: str, details: dict[str, Any]) -> str:
    what = kind.replace("_", " ")
    subject = " ".join(str(details[k]) for k in ("model", "serial") if details.get(k))
    return f"korgwatch: {what}" + (f": {subject}" if subject else "")


def _digest(events: Iterable[NotifyEvent], title: str) -> tuple[str, str]:
    order = ("watch_hit", "new_sighting", "flag_opened", "duplicate_sale", "repost")
    grouped: dict[str, list[str]] = defaultdict(list)
    for event in events:
        grouped[event.kind].append(str(event.details.get("line", event.event_key)))
    lines: list[str] = []
    for kind in sorted(grouped, key=lambda k: order.index(k) if k in order else len(order)):
        lines.append(f"{kind.replace('_', ' ')} ({len(grouped[kind])}):")
        lines.extend(f"- {line}" for line in grouped[kind])
    total = sum(len(v) for v in grouped.values())
    return f"{title} ({total})", "\n".join(lines)


def _run_digests(session: Session, config: NotifyConfig, since: datetime, now: datetime) -> int:
    """One message per target for each closed run whose digest is not yet queued."""
    runs = session.execute(
        select(CrawlRun.id, CrawlRun.outcome, Source.name)
        .join(Source, Source.id == CrawlRun.source_id)
        .where(CrawlRun.outcome.is_not(None), and_(CrawlRun.finished_at.is_not(None), CrawlRun.finished_at >= since))
        .order_by(CrawlRun.id)
    ).all()
    messages = 0
    for run_id, outcome, source in runs:
        key = f"digest:run:{run_id}"
        if outbox.known_event_keys(session, [key]):
            continue
        per_target: dict[str, list[NotifyEvent]] = defaultdict(list)
        for event in outbox.events_of_run(session, run_id):
            for target, mode in config.routes({"kind": event.kind, **event.details}).items():
                if mode == "run":
                    per_target[target].append(event)
        outbox.record_event(session, key, "digest", {"source": source, "outcome": outcome}, now, crawl_run_id=run_id)
        for target, batch in per_target.items():
            title, body = _digest(batch, f"korgwatch: {source} run {run_id} ({outcome})")
            outbox.enqueue(session, key, target, "digest", title, body, now)
            messages += 1
    return messages


def _interval_digests(session: Session, config: NotifyConfig, now: datetime) -> int:
    """One message per target with `digest: interval`, listing the events routed to it since its last one,
    at most once every `every` (the first as soon as there is something to tell)."""
    messages = 0
    for target in config.by_name:
        every = config.interval(target)
        if every is None:
            continue
        sent_text = outbox.get_state(session, f"interval:{target}:sent")
        if sent_text is not None and now - datetime.fromisoformat(sent_text) < timedelta(seconds=every):
            continue
        through = int(outbox.get_state(session, f"interval:{target}:through") or 0)
        pending = list(session.scalars(select(NotifyEvent).where(NotifyEvent.id > through).order_by(NotifyEvent.id)))
        if not pending:
            continue
        batch = [e for e in pending if config.routes({"kind": e.kind, **e.details}).get(target) == "interval"]
        outbox.set_state(session, f"interval:{target}:through", str(pending[-1].id))
        if not batch:
            continue
        key = f"digest:interval:{target}:{batch[0].id}-{batch[-1].id}"
        outbox.enqueue(session, key, target, "digest", *_digest(batch, "korgwatch: new listings"), now)
        outbox.set_state(session, f"interval:{target}:sent", now.isoformat())
        messages += 1
    return messages
