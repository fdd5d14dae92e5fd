"""Near-duplicate look-up of kept photos through `photo_hash_bands`, without reading every hash.

A photo's pHash is indexed as four 16-bit bands. Two hashes within Hamming distance d differ in at most
floor(d / 4) bits of at least one band (pigeonhole: four bands cannot each take more than a quarter of d). So a
look-up reads, for each band, the index entries whose value lies within floor(d / 4) bits of the query's band
(multi-index hashing: 1 value per band up to d = 3, 17 up to d = 7, 137 up to d = 11), and checks the full pHash
and dHash distances only on the photos those return. Exactly the brute-force answer, from a few hundred index
ranges instead of every row.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from crawler.fingerprints import BAND_BITS, BANDS, SAME_PHOTO_DISTANCE, bands, distance
from db.models import Photo, PhotoHashBand

__all__ = ["SAME_PHOTO_DISTANCE", "band_neighbours", "index_photo", "near_photos"]

#: Past this, floor(d / 4) = 4 would enumerate 2,517 values per band: the index stops paying; refuse instead.
MAX_INDEXED_DISTANCE = 15
CHUNK = 5000  # candidate ids per statement


def index_photo(session: Session, photo_id: int, phash: int) -> None:
    """Add a newly kept photo's bands to the index (in the transaction that stores the photo)."""
    session.execute(insert(PhotoHashBand), [{"band": b, "value": v, "photo_id": photo_id} for b, v in bands(phash)])


@cache
def _flip_masks(radius: int) -> tuple[int, ...]:
    """Every 16-bit mask with at most `radius` bits set: XORed with a band value, its neighbours."""
    masks = [0]
    for flipped in range(1, radius + 1):
        for bits in combinations(range(BAND_BITS), flipped):
            masks.append(sum(1 << bit for bit in bits))
    return tuple(masks)


def band_neighbours(value: int, radius: int) -> list[int]:
    """The band values within `radius` bits of `value`, itself first."""
    return [value ^ mask for mask in _flip_masks(radius)]


def _band_sql(phash: int, radius: int) -> str:
    """The ids of the photos behind every band value within `radius` bits of the query's bands.

    Written with the values inline: they are integers computed here (never input text), and hundreds of bound
    parameters cost SQLAlchemy more than the look-up itself (a third of the time at 10k photos).
    """
    return " UNION ".join(
        f"SELECT photo_id FROM {PhotoHashBand.__tablename__} WHERE band = {band} AND value IN "
        f"({','.join(str(v) for v in band_neighbours(value, radius))})"
        for band, value in bands(phash)
    )


def _candidates(session: Session, phash: int, radius: int) -> list[tuple[int, int, int]]:
    """(id, pHash, dHash) of the photos the bands point at.

    SQLite reads them in one statement (`id IN (bands)`, by rowid). PostgreSQL's planner turns that statement
    into a scan of every photo once the bands return thousands of ids (d <= 10 at 1M photos), so there the ids
    come first and the photos are then read by primary key.
    """
    bands_sql = _band_sql(phash, radius)
    photos = Photo.__tablename__
    if session.get_bind().dialect.name == "sqlite":
        rows = session.execute(text(f"SELECT id, phash, dhash FROM {photos} WHERE id IN ({bands_sql})"))
        return [(photo_id, phash_, dhash_) for photo_id, phash_, dhash_ in rows]
    ids = [str(photo_id) for (photo_id,) in session.execute(text(bands_sql))]
    found: list[tuple[int, int, int]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ",".join(ids[start : start + CHUNK])  # integers the database just returned
        rows = session.execute(text(f"SELECT id, phash, dhash FROM {photos} WHERE id IN ({chunk})"))
        found.extend((photo_id, phash_, dhash_) for photo_id, phash_, dhash_ in rows)
    return found


def near_photos(
    session: Session,
    phash: int,
    dhash: int,
    max_distance: int = SAME_PHOTO_DISTANCE,
    max_dhash_distance: int | None = None,
) -> list[tuple[int, int]]:
    """(photo id, pHash distance) of every kept photo within `max_distance` of the given hashes, nearest first.

    The dHash must agree too, within `max_dhash_distance` (default: the same as `max_distance`): pHash alone
    lets some different photos of one model through (two MS-20 plates at pHash distance 10 in the tests).
    """
    if not 0 <= max_distance <= MAX_INDEXED_DISTANCE:
        raise ValueError(f"the band index finds pHash distances from 0 to {MAX_INDEXED_DISTANCE}, not {max_distance}")
    if max_dhash_distance is None:
        max_dhash_distance = max_distance
    radius = max_distance // BANDS
    candidates = _candidates(session, phash, radius)
    found = []
    for photo_id, other_phash, other_dhash in candidates:
        near = distance(phash, other_phash)
        if near <= max_distance and distance(dhash, other_dhash) <= max_dhash_distance:
            found.append((photo_id, near))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))
