"""What the photo rules (db/photo_matching.py) cost ingest: storage of N generated listings with the photo reads
on, beside the same ingest with them off (the bare baseline: classification and flags without any photo read),
interleaved A B A B in the same run; min/median/max of each.

Two stores: listings without kept photos (what every crawl pays for the hooks: a look-up per batch that finds
nothing), and a reclassification of M instruments whose sightings each keep 3 photos, one in five re-using an
earlier sighting's (the whole-history path a register import or a review takes: the pairwise comparison).
Analyses are computed before the clock starts, as in bench_ingest's "storage alone".
Run: .venv/bin/python benchmarks/bench_photo_rules.py --n 20000 --runs 3
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_ingest import generate, precomputed  # this folder is on the path of a script run from it
from PIL import Image
from sqlalchemy import select

import db.ingest as ingest_module
from crawler.fingerprints import fingerprint
from db.engine import make_engine, session_factory, session_scope
from db.ingest import DEFAULT_REPOST_WINDOW, ingest_records, reclassify_instruments
from db.migrate import upgrade_engine
from db.models import Appearance, ListingPhoto, Photo
from db.photo_index import index_photo
from db.photo_matching import PhotoMatcher
from korgwatch.paths import config_dir
from pipeline.rules import Rules, load_rules

NOW = datetime(2026, 7, 1, tzinfo=UTC)


@contextmanager
def photo_rules_off() -> Iterator[None]:
    """The baseline: ingest and classify with no photo read at all (an empty matcher, no reuse look-up)."""
    load, reused = ingest_module.PhotoMatcher.load, ingest_module.photo_reused_flags
    ingest_module.PhotoMatcher.load = classmethod(lambda cls, session, ids, planned, order: cls(order))  # type: ignore[method-assign,assignment]
    ingest_module.photo_reused_flags = lambda session, batch: {}  # type: ignore[assignment]
    try:
        yield
    finally:
        ingest_module.PhotoMatcher.load = load  # type: ignore[method-assign]
        ingest_module.photo_reused_flags = reused


def ingest_store(records: list[dict[str, Any]], path: Path, rules: Rules, batch: int) -> float:
    engine = make_engine(f"sqlite:///{path}")
    upgrade_engine(engine)
    analyser = precomputed(records, rules)
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        with session_scope(engine) as session:
            ingest_records(session, records[i : i + batch], rules, analyser=analyser, now=NOW)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def hashes(count: int, seed: int) -> list[tuple[int, int]]:
    """Real pHash/dHash pairs of `count` small noise pictures (what kept photos carry)."""
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        image = Image.frombytes("L", (16, 12), bytes(rng.randrange(256) for _ in range(192))).resize((128, 96))
        found.append(tuple(fingerprint(image)))
    return found  # type: ignore[return-value]


def relisted(n: int, per_instrument: int = 5) -> list[dict[str, Any]]:
    """`n` listings of n / per_instrument MS-20 serials: each unit listed about `per_instrument` times."""
    records = generate(n, seed=7)
    rng = random.Random(7)
    for record in records:
        record["title"] = f"Korg MS-20 s/n {140000 + rng.randrange(max(1, n // per_instrument))}"
    return records


def photo_store(records: list[dict[str, Any]], path: Path, rules: Rules) -> list[int]:
    """A store of the records whose every appearance keeps 3 photos, one listing in five re-using one photo of
    the previous sighting of its instrument; the instrument ids."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_engine(engine)
    with session_scope(engine) as session:
        ingest_records(session, records, rules, analyser=precomputed(records, rules), now=NOW)
    rng = random.Random(5)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Appearance.instrument_id, Appearance.listing_id).order_by(Appearance.seen_at, Appearance.id)
        ).all()
        pool = hashes(3 * len(rows), 1)
        last: dict[int, int] = {}
        for n, (iid, lid) in enumerate(rows):
            for position in range(3):
                phash, dhash = pool[3 * n + position]
                if position == 0 and iid in last and rng.random() < 0.2:
                    photo_id = last[iid]
                else:
                    photo = Photo(
                        sha256=f"{n:060d}{position:04d}", mime="image/png", width=128, height=96, bytes=1,
                        phash=phash, dhash=dhash, created_at=NOW,
                    )  # fmt: skip
                    session.add(photo)
                    session.flush()
                    photo_id = photo.id
                    index_photo(session, photo_id, phash)
                if position == 0:
                    last[iid] = photo_id
                session.add(
                    ListingPhoto(
                        listing_id=lid, position=position, source_url="u", status="kept", photo_id=photo_id,
                        fetched_at=NOW,
                    )
                )  # fmt: skip
    engine.dispose()
    return sorted({iid for iid, _ in rows})


CHANGED: dict[str, int] = {}


def reclassify(path: Path, ids: list[int], label: str) -> float:
    engine = make_engine(f"sqlite:///{path}")
    started = time.perf_counter()
    with session_factory(engine)() as session:
        CHANGED[label] = reclassify_instruments(session, ids, DEFAULT_REPOST_WINDOW)
        session.rollback()  # the same store for every run
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def interleaved(runs: int, on: Callable[[], float], off: Callable[[], float]) -> tuple[list[float], list[float]]:
    with_rules: list[float] = []
    without: list[float] = []
    for _ in range(runs):
        with_rules.append(on())
        with photo_rules_off():
            without.append(off())
    return with_rules, without


def line(label: str, count: int, times: list[float], unit: str) -> str:
    rates = sorted(count / t for t in times)
    return (
        f"  {label:<44} {rates[0]:>9,.0f} / {statistics.median(rates):>9,.0f} / {rates[-1]:>9,.0f} {unit}/s"
        " (min / median / max)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="listings to ingest (default 20,000)")
    parser.add_argument("--batch", type=int, default=5_000, help="records per transaction")
    parser.add_argument("--reclassify", type=int, default=5_000, help="listings in the photo store (default 5,000)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of each (A B A B ...)")
    args = parser.parse_args()
    rules = load_rules(config_dir())
    records = generate(args.n)
    assert PhotoMatcher is ingest_module.PhotoMatcher
    with tempfile.TemporaryDirectory() as tmp:
        count = iter(range(10**6))

        def fresh() -> Path:
            return Path(tmp) / f"s{next(count)}.sqlite"

        print(f"ingest of {args.n:,} listings without kept photos, batches of {args.batch:,}, {args.runs} runs each:")
        on, off = interleaved(
            args.runs,
            lambda: ingest_store(records, fresh(), rules, args.batch),
            lambda: ingest_store(records, fresh(), rules, args.batch),
        )
        print(line("with the photo rules", args.n, on, "listings"))
        print(line("baseline: the photo reads off", args.n, off, "listings"))

        store = Path(tmp) / "photos.sqlite"
        ids = photo_store(relisted(args.reclassify), store, rules)
        print(f"reclassification of {len(ids):,} instruments ({args.reclassify:,} sightings), each with 3 kept photos:")
        on, off = interleaved(args.runs, lambda: reclassify(store, ids, "on"), lambda: reclassify(store, ids, "off"))
        print(line("with the photo rule", len(ids), on, "instruments"))
        print(line("baseline: the photo rule off", len(ids), off, "instruments"))
        print(f"  kinds changed to what the photos show: {CHANGED['on']:,} (rule off: {CHANGED['off']:,})")


if __name__ == "__main__":
    main()
