"""A listing's photos into the store: `photos` (+ the band index) and `listing_photos`, in the ingest transaction.

The crawl fetches and inspects the photos (crawler/photos.py) and hands the outcome of each position to
`ingest_records`; `store_listing_photos` writes them before the listing's analyses are classified, so that
classification can read a listing's kept photos from the database. A photo is one `photos` row however many
listings show it (unique sha256); a listing's rows are replaced by each crawl that looked at its photos, and
left alone by one that did not (`--no-photos`, or a listing that was not fetched again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from db.bulk import insert_ignore
from db.models import Listing, ListingPhoto, Photo, PhotoHashBand, Source
from db.photo_index import index_photo

#: One listing, as ingest names it: (source name, external id).
ListingKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class FetchedPhoto:
    """What the crawl did with the photo at one position of a listing.

    `kept` carries the file's sha256 and what was read from it (`known=True`: kept by an earlier crawl and not
    fetched again; its measurements are already in `photos`); `refused`/`failed` carry the reason only.
    """

    position: int
    url: str
    status: str
    fetched_at: datetime
    reason: str | None = None
    sha256: str | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    phash: int | None = None
    dhash: int | None = None
    known: bool = False


@dataclass(frozen=True, slots=True)
class KeptPhoto:
    """A source URL already kept: the crawl records it again without a request."""

    sha256: str
    fetched_at: datetime


def kept_photo_urls(session: Session, source: str) -> dict[str, KeptPhoto]:
    """Every photo URL of `source`'s listings that is already kept, with the file it was kept as."""
    rows = session.execute(
        select(ListingPhoto.source_url, Photo.sha256, ListingPhoto.fetched_at)
        .join(Photo, ListingPhoto.photo_id == Photo.id)
        .join(Listing, ListingPhoto.listing_id == Listing.id)
        .join(Source, Listing.source_id == Source.id)
        .where(Source.name == source, ListingPhoto.status == "kept")
    )
    return {url: KeptPhoto(sha, fetched) for url, sha, fetched in rows}


def _pairs(rows: Any) -> dict[str, int]:
    """sha256 -> photo id from (sha256, id) rows (a Result has `keys()`, so dict() would misread it)."""
    return {sha: photo_id for sha, photo_id in rows}


def _photo_ids(session: Session, fetched: Sequence[FetchedPhoto], now: datetime) -> dict[str, int]:
    """The `photos` id of every kept sha256, inserting (and indexing) the ones the store does not have yet."""
    kept = {p.sha256: p for p in fetched if p.status == "kept" and p.sha256}
    if not kept:
        return {}
    ids: dict[str, int] = _pairs(
        session.execute(select(Photo.sha256, Photo.id).where(Photo.sha256.in_(list(kept)))).all()
    )
    new = [p for sha, p in kept.items() if sha not in ids and not p.known]
    if not new:
        return ids
    # Another worker may keep the same file at the same moment: skip its row, then read both back.
    session.execute(
        insert_ignore(session, Photo.__table__, ["sha256"]),
        [
            {
                "sha256": p.sha256,
                "mime": p.mime,
                "width": p.width,
                "height": p.height,
                "bytes": p.size,
                "phash": p.phash,
                "dhash": p.dhash,
                "created_at": now,
            }
            for p in new
        ],
    )
    added = _pairs(
        session.execute(
            select(Photo.sha256, Photo.id)
            .where(Photo.sha256.in_([p.sha256 for p in new]))
            .where(~Photo.id.in_(select(PhotoHashBand.photo_id)))
        )
    )
    for photo in new:
        if photo.sha256 in added and photo.phash is not None:
            index_photo(session, added[photo.sha256], photo.phash)
    ids.update(session.execute(select(Photo.sha256, Photo.id).where(Photo.sha256.in_([p.sha256 for p in new]))).all())
    return ids


def store_listing_photos(session: Session, photos: Mapping[ListingKey, Sequence[FetchedPhoto]], now: datetime) -> int:
    """Record the photos of the given listings (already stored in this transaction); returns the rows written.

    Never commits. A `known` photo whose `photos` row no longer exists (removed meanwhile) is recorded
    `failed` with that reason, so the next crawl fetches it again.
    """
    if not photos:
        return 0
    by_source: dict[str, list[str]] = {}
    for source, external_id in photos:
        by_source.setdefault(source, []).append(external_id)
    listing_ids: dict[ListingKey, int] = {}
    for source, external_ids in by_source.items():
        for listing_id, external_id in session.execute(
            select(Listing.id, Listing.external_id)
            .join(Source, Listing.source_id == Source.id)
            .where(Source.name == source, Listing.external_id.in_(external_ids))
        ):
            listing_ids[(source, external_id)] = listing_id
    every = [photo for key in photos if key in listing_ids for photo in photos[key]]
    photo_ids = _photo_ids(session, every, now)
    rows = []
    for key, fetched in photos.items():
        if key not in listing_ids:
            continue  # refused by ingest: nothing to attach the photos to
        for photo in fetched:
            photo_id = photo_ids.get(photo.sha256 or "") if photo.status == "kept" else None
            status, reason = photo.status, photo.reason
            if status == "kept" and photo_id is None:
                status, reason = "failed", "kept earlier, but its record is gone: fetched again next crawl"
            rows.append(
                {
                    "listing_id": listing_ids[key],
                    "position": photo.position,
                    "source_url": photo.url,
                    "status": status,
                    "reason": reason,
                    "photo_id": photo_id,
                    "fetched_at": photo.fetched_at,
                }
            )
    session.execute(delete(ListingPhoto).where(ListingPhoto.listing_id.in_(sorted(set(listing_ids.values())))))
    if rows:
        session.execute(insert(ListingPhoto), rows)
    return len(rows)
