"""The band index finds exactly what a scan of every kept hash finds, on a real SQLite file and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, insert, select

from crawler.fingerprints import BITS, SAME_PHOTO_DISTANCE, distance, to_signed
from db.engine import read_scope, session_scope
from db.models import Photo, PhotoHashBand
from db.photo_index import MAX_INDEXED_DISTANCE, band_neighbours, index_photo, near_photos

pytest_plugins = ["fixtures.storage.builders"]  # engine: an upgraded store on each backend

CLUSTERS = 60  # seeds, each with neighbours at every distance up to 16 bits: many hits near every threshold
NEIGHBOURS = 12


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(BITS), bits):
        value ^= 1 << bit
    return value


def _random_hashes(rng: random.Random) -> list[tuple[int, int]]:
    """(pHash, dHash) pairs, unsigned: cluster seeds plus neighbours at random distances on both hashes."""
    hashes = []
    for _ in range(CLUSTERS):
        phash, dhash = rng.getrandbits(BITS), rng.getrandbits(BITS)
        hashes.append((phash, dhash))
        for _ in range(NEIGHBOURS):
            hashes.append((_flip(phash, rng.randint(0, 16), rng), _flip(dhash, rng.randint(0, 16), rng)))
    return hashes


@pytest.fixture
def stored(engine: Engine) -> dict[int, tuple[int, int]]:
    """Photos with random clustered hashes, indexed as the crawl indexes them: id -> (signed pHash, dHash)."""
    rng = random.Random(15)
    now = datetime.now(UTC)
    rows = [
        {
            "id": number,
            "sha256": f"{number:064x}",
            "mime": "image/jpeg",
            "width": 320,
            "height": 240,
            "bytes": 1000,
            "phash": to_signed(phash),
            "dhash": to_signed(dhash),
            "created_at": now,
        }
        for number, (phash, dhash) in enumerate(_random_hashes(rng), start=1)
    ]
    with session_scope(engine) as session:
        session.execute(insert(Photo), rows)
        for row in rows:
            index_photo(session, row["id"], row["phash"])
    return {row["id"]: (row["phash"], row["dhash"]) for row in rows}


def _brute_force(kept: dict[int, tuple[int, int]], phash: int, dhash: int, pd: int, dd: int) -> list[tuple[int, int]]:
    found = [
        (photo_id, distance(phash, p))
        for photo_id, (p, d) in kept.items()
        if distance(phash, p) <= pd and distance(dhash, d) <= dd
    ]
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


def test_index_finds_what_a_scan_finds(engine: Engine, stored: dict[int, tuple[int, int]]) -> None:
    with read_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(PhotoHashBand)) == 4 * len(stored)
    for max_distance in (0, 3, 4, 7, SAME_PHOTO_DISTANCE, 11, MAX_INDEXED_DISTANCE):
        _check_against_a_scan(engine, stored, max_distance)
    with read_scope(engine) as session:  # a dHash threshold of its own
        phash, dhash = next(iter(stored.values()))
        expected = _brute_force(stored, phash, dhash, 8, 14)
        assert near_photos(session, phash, dhash, 8, max_dhash_distance=14) == expected
        with pytest.raises(ValueError, match="0 to 15"):
            near_photos(session, 0, 0, MAX_INDEXED_DISTANCE + 1)


def _check_against_a_scan(engine: Engine, stored: dict[int, tuple[int, int]], max_distance: int) -> None:
    rng = random.Random(max_distance)
    queries = [rng.choice(list(stored.values())) for _ in range(15)]  # kept photos themselves
    queries += [(to_signed(_flip(p & (2**64 - 1), rng.randint(1, 9), rng)), d) for p, d in queries[:15]]
    queries += [(to_signed(rng.getrandbits(BITS)), to_signed(rng.getrandbits(BITS))) for _ in range(5)]
    beyond_exact_bands = 0  # hits at distance >= 4, which exact band matches alone could miss
    with read_scope(engine) as session:
        for phash, dhash in queries:
            expected = _brute_force(stored, phash, dhash, max_distance, max_distance)
            assert near_photos(session, phash, dhash, max_distance) == expected, (max_distance, phash, dhash)
            beyond_exact_bands += sum(near >= 4 for _, near in expected)
    if max_distance >= 7:
        assert beyond_exact_bands > 0, "the random set should put neighbours beyond exact band matches"


@pytest.mark.parametrize(("radius", "count"), [(0, 1), (1, 17), (2, 137), (3, 697)])
def test_band_neighbours_are_every_value_within_the_radius(radius: int, count: int) -> None:
    value = 0b1010_0000_1111_0101
    found = band_neighbours(value, radius)
    assert found[0] == value
    assert len(found) == len(set(found)) == count
    assert all((value ^ other).bit_count() <= radius for other in found)
