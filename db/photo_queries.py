"""Read-side queries on kept photos: a serial's photos with their near-duplicates, and what no listing uses.

Callers own the session (korgwatch photos, the garbage collector); nothing here commits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from db.models import Appearance, Instrument, Listing, ListingPhoto, Photo, Source
from db.photo_index import near_photos

SHORT_SHA = 12


@dataclass(frozen=True, slots=True)
class PhotoMatch:
    """Another listing's photo within the same-photo threshold of this one."""

    listing_id: int
    position: int
    distance: int
    serials: tuple[str, ...] = ()  # what that listing shows ("MS-20 141567"); empty when it shows none

    def describe(self) -> str:
        shows = f" ({', '.join(self.serials)})" if self.serials else ""
        return f"listing {self.listing_id} #{self.position}{shows} d={self.distance}"


@dataclass(frozen=True, slots=True)
class SerialPhoto:
    """One kept photo of one appearance of a serial."""

    listing_id: int
    model: str
    source: str
    position: int
    sha256: str
    width: int
    height: int
    bytes: int
    source_url: str
    matches: tuple[PhotoMatch, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sha"] = self.sha256[:SHORT_SHA]
        data["size"] = f"{self.width}x{self.height}, {self.bytes} B"
        data["matches"] = [m.describe() for m in self.matches]
        return data


def _shown_serials(session: Session, listing_ids: set[int]) -> dict[int, tuple[str, ...]]:
    """ "MODEL SERIAL" of every instrument each listing shows."""
    shown: dict[int, list[str]] = {}
    if not listing_ids:
        return {}
    rows = session.execute(
        select(Appearance.listing_id, Instrument.model, Instrument.serial)
        .join(Instrument, Instrument.id == Appearance.instrument_id)
        .where(Appearance.listing_id.in_(listing_ids))
        .order_by(Appearance.listing_id, Instrument.model, Instrument.serial)
    )
    for listing_id, model, serial in rows:
        shown.setdefault(listing_id, []).append(f"{model} {serial}")
    return {listing_id: tuple(dict.fromkeys(names)) for listing_id, names in shown.items()}


def _matches(session: Session, listing_id: int, position: int, photo: Photo) -> list[tuple[int, int, int]]:
    """(listing, position, distance) of the other listing photos near this one, nearest first."""
    near = dict(near_photos(session, photo.phash, photo.dhash))
    if not near:
        return []
    rows = session.execute(
        select(ListingPhoto.listing_id, ListingPhoto.position, ListingPhoto.photo_id)
        .where(ListingPhoto.photo_id.in_(near), ListingPhoto.status == "kept")
        .order_by(ListingPhoto.listing_id, ListingPhoto.position)
    )
    found = [
        (other, pos, near[pid])
        for other, pos, pid in rows
        if pid is not None and (other, pos) != (listing_id, position)
    ]
    return sorted(found, key=lambda m: (m[2], m[0], m[1]))


def serial_photos(session: Session, serial: str, model: str | None = None) -> list[SerialPhoto]:
    """The kept photos of every listing showing `serial`, oldest appearance first, each with its matches."""
    stmt = (
        select(Listing.id, Instrument.model, Source.name, ListingPhoto.position, ListingPhoto.source_url, Photo)
        .select_from(Instrument)
        .join(Appearance, Appearance.instrument_id == Instrument.id)
        .join(Listing, Listing.id == Appearance.listing_id)
        .join(Source, Source.id == Listing.source_id)
        .join(ListingPhoto, ListingPhoto.listing_id == Listing.id)
        .join(Photo, Photo.id == ListingPhoto.photo_id)
        .where(Instrument.serial == serial.strip().upper(), ListingPhoto.status == "kept")
        .order_by(Appearance.seen_at, Listing.id, ListingPhoto.position)
    )
    if model:
        stmt = stmt.where(Instrument.model == model)
    seen: set[tuple[int, int]] = set()
    photos: list[SerialPhoto] = []
    for listing_id, model_name, source, position, url, photo in session.execute(stmt):
        if (listing_id, position) in seen:  # a listing showing two units of the serial lists its photos once
            continue
        seen.add((listing_id, position))
        photos.append(
            SerialPhoto(
                listing_id,
                model_name,
                source,
                position,
                photo.sha256,
                photo.width,
                photo.height,
                photo.bytes,
                url,
                tuple(PhotoMatch(*match) for match in _matches(session, listing_id, position, photo)),
            )
        )
    shown = _shown_serials(session, {m.listing_id for p in photos for m in p.matches})
    return [
        replace(p, matches=tuple(replace(m, serials=shown.get(m.listing_id, ())) for m in p.matches)) for p in photos
    ]


def unreferenced(before: datetime) -> Any:
    """The condition "no listing uses this photo, and it was stored before `before`" (young rows may belong
    to a crawl whose listing rows are not committed yet)."""
    return ~exists().where(ListingPhoto.photo_id == Photo.id) & (Photo.created_at < before)


def unreferenced_photos(session: Session, before: datetime) -> list[tuple[int, str, int]]:
    """(id, sha256, bytes) of the photos rows no listing uses, stored before `before`."""
    rows = session.execute(select(Photo.id, Photo.sha256, Photo.bytes).where(unreferenced(before)))
    return [(photo_id, sha, size) for photo_id, sha, size in rows]


def delete_unreferenced_photos(session: Session, ids: list[int], before: datetime, chunk: int = 500) -> int:
    """Delete these photos rows (and, by cascade, their index bands) if still unused; the number deleted."""
    deleted = 0
    for start in range(0, len(ids), chunk):
        result = session.execute(delete(Photo).where(Photo.id.in_(ids[start : start + chunk]), unreferenced(before)))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


def referenced_shas(session: Session) -> set[str]:
    """The sha256 of every photos row: the files the store still needs."""
    return set(session.scalars(select(Photo.sha256)))


def is_referenced(session: Session, sha256: str) -> bool:
    return session.scalar(select(exists().where(Photo.sha256 == sha256))) is True
