"""Near-duplicate look-up of kept photos through `photo_hash_bands`, without reading every hash.

A photo's pHash is indexed as four 16-bit bands. Two hashes within Hamming distance 3 share at least one band
exactly (four bands, three differing bits: one band is untouched), so a look-up reads the four index entries of
the query's bands and checks the full pHash and dHash distances only on what they return.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from crawler.fingerprints import bands, distance
from db.models import Photo, PhotoHashBand

#: pHash distance up to which two photos count as the same picture (the band layout guarantees <= 3).
SAME_PHOTO_DISTANCE = 3


def index_photo(session: Session, photo_id: int, phash: int) -> None:
    """Add a newly kept photo's bands to the index (in the transaction that stores the photo)."""
    session.execute(insert(PhotoHashBand), [{"band": b, "value": v, "photo_id": photo_id} for b, v in bands(phash)])


def near_photos(
    session: Session, phash: int, dhash: int, max_distance: int = SAME_PHOTO_DISTANCE
) -> list[tuple[int, int]]:
    """(photo id, pHash distance) of every kept photo within `max_distance` of the given hashes, nearest first.

    Both hashes must agree within the distance: pHash alone lets some different photos of one model through.
    """
    if max_distance > SAME_PHOTO_DISTANCE:
        raise ValueError(f"the band index finds distances up to {SAME_PHOTO_DISTANCE}, not {max_distance}")
    keys = bands(phash)
    candidates: Iterable[tuple[int, int, int]] = session.execute(
        select(Photo.id, Photo.phash, Photo.dhash)
        .join(PhotoHashBand, PhotoHashBand.photo_id == Photo.id)
        .where(tuple_(PhotoHashBand.band, PhotoHashBand.value).in_(keys))
        .distinct()
    ).tuples()
    found = []
    for photo_id, other_phash, other_dhash in candidates:
        near = distance(phash, other_phash)
        if near <= max_distance and distance(dhash, other_dhash) <= max_distance:
            found.append((photo_id, near))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))
