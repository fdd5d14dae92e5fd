"""Photo fingerprints: photos hashed per second, and near-duplicate look-up time as the store grows.

1. Hashing: the test fixtures (tests/fixtures/photos), scaled up to a marketplace's size (1200 px on the long
   side, JPEG q85), decoded and fingerprinted (pHash + dHash) per second, beside Pillow's decode alone of the
   same bytes: the floor no hashing of a decoded photo can beat. Interleaved (decode, hash, decode, hash...).
2. Look-up: `near_photos` at the same-photo threshold (and at 3, where exact bands suffice) over a SQLite store
   of 10k, 100k and 1M kept hashes (PostgreSQL too with --postgres URL), beside the fastest equivalent answer: a
   numpy XOR + popcount scan over every hash already in memory. Per query, interleaved; min/median/max over
   rounds. Hashes are random 64-bit values with 10 % near-copies (a repost's re-encodes), so band values are
   spread evenly: real pHashes cluster more, which puts more candidates behind each band value.
Run: .venv/bin/python benchmarks/bench_photos.py [--sizes 10000,100000,1000000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import Engine, insert, text

from crawler.fingerprints import BITS, SAME_PHOTO_DISTANCE, bands, fingerprint, to_signed, to_unsigned
from db.engine import make_engine, read_scope, session_scope
from db.migrate import upgrade_engine
from db.models import Photo, PhotoHashBand
from db.photo_index import near_photos

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "photos"
MARKETPLACE_SIDE = 1200
QUERIES = 100
BATCH = 20_000


def summary(values: list[float]) -> str:
    return f"min {min(values):.4g}  median {statistics.median(values):.4g}  max {max(values):.4g}"


def marketplace_photos() -> list[bytes]:
    """The fixtures as a marketplace serves them: about 1200 px on the long side, JPEG q85."""
    photos = []
    for path in sorted(FIXTURES.glob("*.jpg")):
        with Image.open(path) as image:
            scale = MARKETPLACE_SIDE / max(image.size)
            big = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
        buffer = io.BytesIO()
        big.save(buffer, "JPEG", quality=85)
        photos.append(buffer.getvalue())
    return photos


def decode_only(photos: list[bytes]) -> None:
    for data in photos:
        with Image.open(io.BytesIO(data)) as image:
            image.load()


def decode_and_hash(photos: list[bytes]) -> None:
    for data in photos:
        with Image.open(io.BytesIO(data)) as image:
            fingerprint(image)


def bench_hashing(rounds: int) -> None:
    photos = marketplace_photos()
    rates: dict[str, list[float]] = {"decode": [], "hash": []}
    for _ in range(rounds):
        for name, work in (("decode", decode_only), ("hash", decode_and_hash)):
            start = time.perf_counter()
            work(photos)
            rates[name].append(len(photos) / (time.perf_counter() - start))
    print(f"hashing: {len(photos)} photos of {MARKETPLACE_SIDE} px, {rounds} rounds interleaved (photos/s)")
    print(f"  Pillow decode alone (baseline)  {summary(rates['decode'])}")
    print(f"  decode + pHash + dHash          {summary(rates['hash'])}")
    ratio = statistics.median(rates["hash"]) / statistics.median(rates["decode"])
    print(f"  hashing runs at {ratio:.0%} of the decode-alone rate (medians)")


def random_hashes(n: int, rng: random.Random) -> list[tuple[int, int]]:
    """(pHash, dHash) unsigned: 90 % random, 10 % near-copies of an earlier one (1 to 8 bits off each)."""
    hashes: list[tuple[int, int]] = []
    for i in range(n):
        if i and rng.random() < 0.1:
            p, d = hashes[rng.randrange(len(hashes))]
            for _ in range(rng.randint(1, 8)):
                p ^= 1 << rng.randrange(BITS)
                d ^= 1 << rng.randrange(BITS)
            hashes.append((p, d))
        else:
            hashes.append((rng.getrandbits(BITS), rng.getrandbits(BITS)))
    return hashes


def add_photos(engine: Engine, hashes: list[tuple[int, int]], first_id: int) -> None:
    """Rows and index bands as the crawl writes them, in batches (the fast path: executemany)."""
    now = datetime.now(UTC)
    for start in range(0, len(hashes), BATCH):
        photos, band_rows = [], []
        for offset, (p, d) in enumerate(hashes[start : start + BATCH]):
            photo_id = first_id + start + offset
            photos.append(
                {
                    "id": photo_id,
                    "sha256": f"{photo_id:064x}",
                    "mime": "image/jpeg",
                    "width": 1200,
                    "height": 900,
                    "bytes": 200_000,
                    "phash": to_signed(p),
                    "dhash": to_signed(d),
                    "created_at": now,
                }
            )
            band_rows += [{"band": b, "value": v, "photo_id": photo_id} for b, v in bands(to_signed(p))]
        with session_scope(engine) as session:
            session.execute(insert(Photo), photos)
            session.execute(insert(PhotoHashBand), band_rows)


def numpy_scan(phashes: np.ndarray, dhashes: np.ndarray, p: int, d: int, max_distance: int) -> np.ndarray:
    """The baseline: every hash in memory, XOR and popcount, both hashes within the distance."""
    near = np.bitwise_count(phashes ^ np.uint64(p)) <= max_distance
    near &= np.bitwise_count(dhashes ^ np.uint64(d)) <= max_distance
    return np.flatnonzero(near)


Lookup = Callable[[int, int], int]


def lookups(engine: Engine, phashes: np.ndarray, dhashes: np.ndarray, max_distance: int) -> dict[str, Lookup]:
    """The two ways to answer one query, each returning how many photos it found."""

    def by_scan(p: int, d: int) -> int:
        return len(numpy_scan(phashes, dhashes, p, d, max_distance))

    def by_index(p: int, d: int) -> int:
        with read_scope(engine) as session:
            return len(near_photos(session, to_signed(p), to_signed(d), max_distance))

    return {"scan": by_scan, "index": by_index}


def compare(measures: dict[str, Lookup], queries: list[tuple[int, int]], rounds: int, max_distance: int) -> None:
    """Interleaved rounds (scan, index, scan, index...): ms per query, and the same answers from both."""
    times: dict[str, list[float]] = {name: [] for name in measures}
    hits = dict.fromkeys(measures, 0)
    for _ in range(rounds):
        for name, measure in measures.items():
            start = time.perf_counter()
            hits[name] = sum(measure(p, d) for p, d in queries)
            times[name].append((time.perf_counter() - start) / len(queries) * 1000)
    assert hits["scan"] == hits["index"], hits  # the same answers, or the comparison means nothing
    print(f"  d<={max_distance:2}: numpy scan in memory (baseline) {summary(times['scan'])} ms/query")
    print(f"  d<={max_distance:2}: band index (near_photos)        {summary(times['index'])} ms/query")
    print(f"         {hits['index']} photos found by both over {len(queries)} queries")


def bench_lookup(engine: Engine, label: str, sizes: list[int], rounds: int) -> None:
    rng = random.Random(15)
    stored: list[tuple[int, int]] = []
    for size in sizes:
        fresh = random_hashes(size - len(stored), rng)
        started = time.perf_counter()
        add_photos(engine, fresh, first_id=len(stored) + 1)
        stored += fresh
        built = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(text("ANALYZE photos; ANALYZE photo_hash_bands"))
        phashes = np.array([p for p, _ in stored], dtype=np.uint64)
        dhashes = np.array([d for _, d in stored], dtype=np.uint64)
        queries = []
        for _ in range(QUERIES):  # half near a kept photo (a repost), half new photos
            p, d = rng.choice(stored) if rng.random() < 0.5 else (rng.getrandbits(BITS), rng.getrandbits(BITS))
            queries.append((p ^ (1 << rng.randrange(BITS)), d))
        print(f"look-up, {label}, {size:,} kept hashes (added {len(fresh):,} in {built:.1f} s), {QUERIES} queries:")
        for max_distance in (3, SAME_PHOTO_DISTANCE):
            compare(lookups(engine, phashes, dhashes, max_distance), queries, rounds, max_distance)
        started = time.perf_counter()
        with read_scope(engine) as session:
            loaded = session.execute(text("SELECT phash, dhash FROM photos")).all()
        array = np.array([to_unsigned(p) for p, _ in loaded], dtype=np.uint64)
        took = time.perf_counter() - started
        print(f"  (the scan's price: reading {len(array):,} hashes into memory took {took:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Store sizes, ascending, comma-separated.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", help="Also measure on this PostgreSQL URL (a database of its own).")
    parser.add_argument("--skip-hashing", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true", help="Measure the look-up on PostgreSQL only.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not args.skip_hashing:
        bench_hashing(args.rounds)
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_sqlite:
            run_lookup(f"sqlite:///{Path(folder) / 'photos.sqlite'}", "SQLite", sizes, args.rounds)
    if args.postgres:
        run_lookup(args.postgres, "PostgreSQL", sizes, args.rounds)


def run_lookup(url: str, label: str, sizes: list[int], rounds: int) -> None:
    engine = make_engine(url)
    upgrade_engine(engine)
    try:
        bench_lookup(engine, label, sizes, rounds)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
