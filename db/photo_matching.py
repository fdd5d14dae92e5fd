"""Photos used where the keeper decides: a repost recognised by its photos, and photos reused under another serial.

Marketplaces give every upload a new URL and re-encode it, so the classifier's old photo rule (an identical
image URL) almost never fires. Kept photos carry perceptual hashes (`crawler.fingerprints`), and two photos
whose pHash and dHash both lie within `SAME_PHOTO_DISTANCE` are the same picture:

- `PhotoMatcher` gives `db.ingest.classify` the rule "a sighting sharing a photo with an EARLIER sighting of
  the same instrument is a `repost`, whatever the seller", with the matching pair as `kind_evidence`. It
  reads the kept photos of one instrument's listings only (appearances by instrument, listing photos by
  listing: both indexed), never the whole photo table, and compares them pairwise.
- `photo_reused_flags` raises `photo_reused` on a listing whose photos are near-identical to those of an
  EARLIER listing of a DIFFERENT serial (someone else's pictures, or a title with the wrong serial); the
  candidates come from the band index (`db.photo_index.near_photos`).

Both read `listing_photos`/`photos` rows that the ingest transaction writes before it classifies (`db/photos.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from crawler.fingerprints import distance
from db.bulk import KEYS_PER_LOOKUP, one_of
from db.models import Appearance, Instrument, Listing, ListingPhoto, Photo
from db.photo_index import SAME_PHOTO_DISTANCE, near_photos
from pipeline.results import FLAG_PHOTO_REUSED

PHOTO_REUSED = FLAG_PHOTO_REUSED
SAME_PHOTO_RULE = "same_photo"
MAX_PAIRS = 12  # pairs kept as evidence per listing pair (a listing keeps at most 12 photos by default)


class KeptPhoto(NamedTuple):
    """One kept photo of a listing, with what matching needs."""

    listing_id: int
    position: int
    photo_id: int
    sha256: str
    phash: int
    dhash: int


class SightingLike(Protocol):
    """What the matcher reads of `db.ingest.Sighting` (a protocol: db.ingest imports this module)."""

    instrument_id: int
    listing_id: int
    seen_at: datetime
    id: int | None


def _chunks(items: Sequence[Any], size: int = KEYS_PER_LOOKUP) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def photo_distance(a: KeptPhoto, b: KeptPhoto) -> int | None:
    """The pHash distance when two photos are the same picture (both hashes within the threshold), else None."""
    if a.photo_id == b.photo_id:
        return 0
    near = distance(a.phash, b.phash)
    if near <= SAME_PHOTO_DISTANCE and distance(a.dhash, b.dhash) <= SAME_PHOTO_DISTANCE:
        return near
    return None


def shared_photos(later: Sequence[KeptPhoto], earlier: Sequence[KeptPhoto]) -> list[dict[str, Any]]:
    """Every (later photo, earlier photo) pair that is the same picture, nearest first, as evidence entries."""
    pairs = []
    for mine in later:
        for theirs in earlier:
            near = photo_distance(mine, theirs)
            if near is not None:
                pairs.append(
                    {
                        "position": mine.position,
                        "sha256": mine.sha256,
                        "earlier_position": theirs.position,
                        "earlier_sha256": theirs.sha256,
                        "distance": near,
                    }
                )
    pairs.sort(key=lambda p: (p["distance"], p["position"], p["earlier_position"]))
    return pairs[:MAX_PAIRS]


def kept_photos(session: Session, listing_ids: Iterable[int]) -> dict[int, list[KeptPhoto]]:
    """The kept photos of these listings, by listing, in position order (read through listing_photos' key)."""
    found: dict[int, list[KeptPhoto]] = defaultdict(list)
    for chunk in _chunks(sorted(set(listing_ids))):
        rows = session.execute(
            select(
                ListingPhoto.listing_id,
                ListingPhoto.position,
                Photo.id,
                Photo.sha256,
                Photo.phash,
                Photo.dhash,
            )
            .join(Photo, Photo.id == ListingPhoto.photo_id)
            .where(one_of(session, ListingPhoto.listing_id, chunk), ListingPhoto.status == "kept")
            .order_by(ListingPhoto.listing_id, ListingPhoto.position)
        )
        for row in rows:
            found[row[0]].append(KeptPhoto(*row))
    return dict(found)


# --- reposts ---------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One sighting of an instrument as the matcher knows it."""

    key: Any
    listing_id: int
    appearance_id: int | None
    stored_evidence: dict[str, Any] | None


@dataclass
class PhotoMatcher:
    """The kept photos of the sightings of some instruments, for classify's photo rule.

    `order` is classify's sort key (db.ingest._sort_key), so "earlier" means what it means to the classifier.
    Evidence found for stored appearances that differs from what they hold is written by `write_evidence`.
    """

    order: Callable[[Any], Any]
    photos: dict[int, list[KeptPhoto]] = field(default_factory=dict)  # by listing id
    entries: dict[int, list[_Entry]] = field(default_factory=dict)  # by instrument id
    updates: dict[int, dict[str, Any] | None] = field(default_factory=dict)  # appearance id -> new evidence

    @classmethod
    def load(
        cls,
        session: Session,
        instrument_ids: Iterable[int],
        planned: Sequence[SightingLike],
        order: Callable[[Any], Any],
    ) -> PhotoMatcher:
        """Read the planned sightings' kept photos, and the stored sightings with kept photos of the instruments
        classified from their whole history (`instrument_ids`) and of those whose planned sightings have photos
        (an instrument whose new sightings have none needs no history: they can match nothing)."""
        matcher = cls(order)
        matcher.photos = kept_photos(session, [s.listing_id for s in planned])
        with_photos = {s.instrument_id for s in planned if s.listing_id in matcher.photos}
        wanted = sorted(set(instrument_ids) | with_photos)
        entries: dict[int, list[_Entry]] = defaultdict(list)
        have = {(p.listing_id, p.position) for photos in matcher.photos.values() for p in photos}
        for chunk in _chunks(wanted):
            rows = session.execute(instrument_photos_statement(session, chunk))
            seen: set[int] = set()
            for iid, aid, lid, seen_at, evidence, position, pid, sha, phash, dhash in rows:
                if aid not in seen:
                    seen.add(aid)
                    key = order(_Key(iid, lid, seen_at, aid))
                    entries[iid].append(_Entry(key, lid, aid, evidence))
                    matcher.photos.setdefault(lid, [])
                if (lid, position) not in have:  # a listing with sightings of several instruments comes back again
                    have.add((lid, position))
                    matcher.photos[lid].append(KeptPhoto(lid, position, pid, sha, phash, dhash))
        for sighting in planned:
            if matcher.photos.get(sighting.listing_id):
                entries[sighting.instrument_id].append(_Entry(order(sighting), sighting.listing_id, None, None))
        matcher.entries = dict(entries)
        return matcher

    def earlier_match(self, sighting: SightingLike) -> dict[str, Any] | None:
        """The evidence that `sighting` shows a photo of an earlier sighting of its instrument, or None.

        The latest such earlier sighting is named (the one this listing re-posts), with every matching pair.
        """
        mine = self.photos.get(sighting.listing_id)
        if not mine:
            return None
        key = self.order(sighting)
        earlier = [e for e in self.entries.get(sighting.instrument_id, ()) if e.key < key]
        for entry in sorted(earlier, key=lambda e: e.key, reverse=True):
            if entry.listing_id == sighting.listing_id:
                continue
            pairs = shared_photos(mine, self.photos.get(entry.listing_id, ()))
            if pairs:
                return {
                    "rule": SAME_PHOTO_RULE,
                    "listing_id": entry.listing_id,
                    "appearance_id": entry.appearance_id,
                    "pairs": pairs,
                }
        return None

    def settle(self, sighting: SightingLike, evidence: dict[str, Any] | None) -> None:
        """Record the evidence classify decided on: stored appearances whose evidence changes get an update."""
        if sighting.id is None:
            return
        stored = next(
            (e.stored_evidence for e in self.entries.get(sighting.instrument_id, ()) if e.appearance_id == sighting.id),
            None,
        )
        if stored != evidence:
            self.updates[sighting.id] = evidence

    def write_evidence(self, session: Session) -> None:
        """Write the changed evidence of stored appearances (in the classifying transaction)."""
        if self.updates:
            session.execute(
                update(Appearance), [{"id": aid, "kind_evidence": ev} for aid, ev in sorted(self.updates.items())]
            )
            self.updates.clear()


def instrument_photos_statement(session: Session, instrument_ids: Sequence[int]) -> Select[Any]:
    """The kept photos of these instruments' sightings: appearances by instrument (ix_appearances_instrument_id_
    seen_at), their listings' photos by listing (listing_photos' unique key), the photos by id. On its own so a
    test can check the plan: it never reads the photo tables whole."""
    return (
        select(
            Appearance.instrument_id,
            Appearance.id,
            Appearance.listing_id,
            Appearance.seen_at,
            Appearance.kind_evidence,
            ListingPhoto.position,
            Photo.id,
            Photo.sha256,
            Photo.phash,
            Photo.dhash,
        )
        .join(ListingPhoto, ListingPhoto.listing_id == Appearance.listing_id)
        .join(Photo, Photo.id == ListingPhoto.photo_id)
        .where(
            one_of(session, Appearance.instrument_id, instrument_ids),
            Appearance.status != "dismissed",
            ListingPhoto.status == "kept",
        )
        .order_by(Appearance.id, ListingPhoto.position)
    )


class _Key(NamedTuple):
    """A stored sighting's fields that classify's sort key reads (the same names as db.ingest.Sighting's)."""

    instrument_id: int
    listing_id: int
    seen_at: datetime
    id: int | None


# --- photo_reused ----------------------------------------------------------------------------------------


class BatchSighting(NamedTuple):
    """A serial a listing of the ingest batch shows, with the key of its appearance (for the flag)."""

    listing_id: int
    model: str
    serial: str
    seen_at: datetime


class ReusedFlag(NamedTuple):
    """A `photo_reused` flag, shaped like the analyser's flags (`db.findings.FoundFlag`)."""

    code: str
    details: dict[str, Any]


@dataclass
class _Other:
    listing_id: int
    seen_at: datetime
    serials: set[tuple[str, str]] = field(default_factory=set)
    url: str = ""


def photo_reused_flags(
    session: Session, batch: Sequence[BatchSighting]
) -> dict[tuple[int, str, str], list[ReusedFlag]]:
    """`photo_reused` flags by appearance key (listing id, model, serial) for the batch's sightings.

    A listing is flagged when one of its kept photos is near-identical to a kept photo of an earlier listing
    (by sighting time, then id) none of whose serials is this sighting's serial. Listings of the batch count
    as earlier listings too, with the serials the batch gives them.
    """
    photos = kept_photos(session, {s.listing_id for s in batch})
    if not photos:
        return {}
    # Candidates through the band index: other listings holding a near photo.
    near: dict[int, list[tuple[KeptPhoto, int, int]]] = defaultdict(list)  # listing -> (mine, photo id, dist)
    for listing_photos in photos.values():
        for mine in listing_photos:
            for photo_id, dist in near_photos(session, mine.phash, mine.dhash):
                near[mine.listing_id].append((mine, photo_id, dist))
    photo_ids = sorted({pid for found in near.values() for _, pid, _ in found})
    holders: dict[int, list[tuple[int, int, str]]] = defaultdict(list)  # photo id -> (listing, position, sha)
    for chunk in _chunks(photo_ids):
        for lid, position, pid, sha in session.execute(
            select(ListingPhoto.listing_id, ListingPhoto.position, Photo.id, Photo.sha256)
            .join(Photo, Photo.id == ListingPhoto.photo_id)
            .where(one_of(session, ListingPhoto.photo_id, chunk), ListingPhoto.status == "kept")
        ):
            holders[pid].append((lid, position, sha))
    others = _other_listings(session, {lid for hs in holders.values() for lid, _, _ in hs}, batch)
    flags: dict[tuple[int, str, str], list[ReusedFlag]] = {}
    for sighting in batch:
        matches: list[dict[str, Any]] = []
        for mine, pid, dist in near.get(sighting.listing_id, ()):
            for lid, position, sha in holders.get(pid, ()):
                other = others.get(lid)
                if lid == sighting.listing_id or other is None or not other.serials:
                    continue
                if (other.seen_at, other.listing_id) >= (sighting.seen_at, sighting.listing_id):
                    continue
                if sighting.serial in {serial for _, serial in other.serials}:
                    continue  # the same serial: the repost rule's business
                matches.append(
                    {
                        "position": mine.position,
                        "sha256": mine.sha256,
                        "listing_id": lid,
                        "url": other.url,
                        "serials": [f"{m} {s}" for m, s in sorted(other.serials)],
                        "earlier_position": position,
                        "earlier_sha256": sha,
                        "distance": dist,
                    }
                )
        if matches:
            matches.sort(key=lambda m: (m["distance"], m["position"], m["listing_id"]))
            first = matches[0]
            message = (
                f"photo {first['position'] + 1} is photo {first['earlier_position'] + 1} of earlier listing "
                f"{first['listing_id']} ({', '.join(first['serials'])}), distance {first['distance']}: "
                f"someone else's pictures, or the wrong serial in this title"
            )
            key = (sighting.listing_id, sighting.model, sighting.serial)
            flags[key] = [ReusedFlag(PHOTO_REUSED, {"message": message, "matches": matches[:MAX_PAIRS]})]
    return flags


def _other_listings(session: Session, listing_ids: set[int], batch: Sequence[BatchSighting]) -> dict[int, _Other]:
    """The serials and sighting times of these listings: stored appearances, and what the batch says."""
    others: dict[int, _Other] = {}
    for chunk in _chunks(sorted(listing_ids)):
        for lid, seen_at, model, serial, url in session.execute(
            select(Appearance.listing_id, Appearance.seen_at, Instrument.model, Instrument.serial, Listing.url)
            .join(Instrument, Instrument.id == Appearance.instrument_id)
            .join(Listing, Listing.id == Appearance.listing_id)
            .where(one_of(session, Appearance.listing_id, chunk), Appearance.status != "dismissed")
        ):
            other = others.setdefault(lid, _Other(lid, seen_at, url=url))
            other.seen_at = min(other.seen_at, seen_at)
            other.serials.add((model, serial))
    for sighting in batch:
        if sighting.listing_id in listing_ids:
            other = others.setdefault(sighting.listing_id, _Other(sighting.listing_id, sighting.seen_at))
            other.seen_at = min(other.seen_at, sighting.seen_at)
            other.serials.add((sighting.model, sighting.serial))
    unnamed = sorted(lid for lid, other in others.items() if not other.url)
    for chunk in _chunks(unnamed):
        for lid, url in session.execute(select(Listing.id, Listing.url).where(one_of(session, Listing.id, chunk))):
            others[lid].url = url
    return others
