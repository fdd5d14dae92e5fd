"""Atom feeds (made with feedgen): new sightings, the open review queue, and one per model.

Each entry links to the listing's page on the review server (`rel="alternate"`) and to the original listing
(`rel="related"`). The same feed is written to a file by `korgwatch feed` for a static site. Titles and summaries
are scraped text: feedgen escapes them as XML, and nothing of theirs is ever a link but the listing URL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from feedgen.feed import FeedGenerator
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Appearance, Flag, Instrument, Listing, Source

FEEDS = ("sightings", "queue", "models")  # `models` stands for every /feeds/models/NAME.atom
FEED_LIMIT = 100
ATOM = "http://www.w3.org/2005/Atom"
_XML_UNSAFE = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def _clean(text: str | None, limit: int = 2000) -> str:
    """Scraped text fit for XML 1.0 (no control characters), cut to `limit`."""
    return (text or "").translate(_XML_UNSAFE)[:limit]


def _feed(base_url: str, path: str, title: str, subtitle: str) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(f"{base_url}{path}")
    feed.title(title)
    feed.subtitle(subtitle)
    feed.link(href=f"{base_url}{path}", rel="self")
    feed.link(href=f"{base_url}/", rel="alternate")
    feed.author({"name": "korgwatch"})
    feed.updated(datetime.now(UTC))
    return feed


def _entry(
    feed: FeedGenerator, base_url: str, key: str, title: str, listing: Listing, summary: str, at: datetime
) -> None:
    entry = feed.add_entry(order="append")
    entry.id(f"{base_url}/{key}")
    entry.title(_clean(title, 300))
    entry.link(href=f"{base_url}/listing/{listing.id}", rel="alternate")
    entry.link(href=_clean(listing.url, 2000), rel="related", title="the original listing")
    entry.summary(_clean(summary))
    entry.updated(at if at.tzinfo else at.replace(tzinfo=UTC))
    entry.published(at if at.tzinfo else at.replace(tzinfo=UTC))


def _appearances(
    session: Session, model: str | None, since: date | None = None, until: date | None = None
) -> list[Any]:
    query = (
        select(Appearance, Listing, Instrument.model, Instrument.serial, Source.name)
        .join(Listing, Listing.id == Appearance.listing_id)
        .join(Instrument, Instrument.id == Appearance.instrument_id)
        .join(Source, Source.id == Listing.source_id)
        .where(Appearance.status == "counted")
        .order_by(Appearance.created_at.desc(), Appearance.id.desc())
        .limit(FEED_LIMIT)
    )
    query = query.where(Instrument.model == model) if model else query.where(Appearance.kind == "new")
    if since is not None:
        query = query.where(Appearance.seen_at >= datetime.combine(since, time.min, UTC))
    if until is not None:
        query = query.where(Appearance.seen_at < datetime.combine(until + timedelta(days=1), time.min, UTC))
    return list(session.execute(query).all())


def _atom(feed: FeedGenerator) -> bytes:
    """The feed's Atom XML, with each entry's second link marked `rel="related"` (the original listing).

    feedgen 1.0 writes entry links without their `rel` (a shadowed variable in its atom writer), which would make
    both links "alternate"; the rel is set here on its output, parsed with lxml.
    """
    root = etree.fromstring(feed.atom_str(pretty=False))
    for entry in root.iterfind(f"{{{ATOM}}}entry"):
        links = entry.findall(f"{{{ATOM}}}link")
        if len(links) == 2:
            links[0].set("rel", "alternate")
            links[1].set("rel", "related")
            links[1].set("title", "the original listing")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _price(listing: Listing) -> str:
    return f"{listing.price} {listing.currency or ''}".strip() if listing.price is not None else "no price"


def sightings_feed(
    session: Session, base_url: str, model: str | None = None, since: date | None = None, until: date | None = None
) -> bytes:
    """New sightings (first appearances of a serial), or every counted appearance of `model`, newest first."""
    path = f"/feeds/models/{model}.atom" if model else "/feeds/sightings.atom"
    title = f"korgwatch: {model}" if model else "korgwatch: new sightings"
    feed = _feed(base_url, path, title, "serials seen in second-hand listings")
    for appearance, listing, inst_model, serial, source in _appearances(session, model, since, until):
        kind = appearance.kind.replace("_", " ")
        summary = f"{inst_model} {serial} ({kind}) — {source}, {_price(listing)}. {_clean(listing.title, 300)}"
        _entry(
            feed,
            base_url,
            f"appearance/{appearance.id}",
            f"{inst_model} {serial}",
            listing,
            summary,
            appearance.created_at,
        )
    return _atom(feed)


def queue_feed(session: Session, base_url: str) -> bytes:
    """The open review queue, newest flag first."""
    feed = _feed(base_url, "/feeds/queue.atom", "korgwatch: review queue", "open flags to decide")
    rows = session.execute(
        select(Flag, Listing, Source.name, Appearance.detected_model, Appearance.detected_serial)
        .join(Listing, Listing.id == Flag.listing_id)
        .join(Source, Source.id == Listing.source_id)
        .outerjoin(Appearance, Appearance.id == Flag.appearance_id)
        .where(Flag.status == "open")
        .order_by(Flag.created_at.desc(), Flag.id.desc())
        .limit(FEED_LIMIT)
    ).all()
    for flag, listing, source, model, serial in rows:
        message = str((flag.details or {}).get("message") or flag.code)
        subject = " ".join(x for x in (model, serial) if x) or _clean(listing.title, 80)
        _entry(
            feed,
            base_url,
            f"flag/{flag.id}",
            f"{flag.code}: {subject}",
            listing,
            f"{message} — {source}, {_price(listing)}. {_clean(listing.title, 300)}",
            flag.created_at,
        )
    return _atom(feed)
