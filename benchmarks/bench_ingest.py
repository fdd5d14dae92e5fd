"""Ingest speed on SQLite beside raw `sqlite3.executemany` of the same rows, measured interleaved in one run.

Two raw baselines, both plain executemany in WAL mode with one commit per batch, as korgwatch commits:
- every row korgwatch writes for these listings (listings, instruments, appearances, flags), into korgwatch's
  own schema (its migrations: the same indexes, constraints, foreign keys and page cache), with none of its
  work: the same rows, written bare. The rows written are counted and printed, to show they are the same;
- the listing rows alone, into a one-table schema with only its unique key: a floor no storing of sightings
  can come near (the analyser alone takes twice its time).

Part 1, into an empty store, per size in --n (comma-separated, default 10,000 and 100,000): the baselines, the
storage layer alone (analyses computed before the clock starts: what db/ can be held to), a re-crawl of the
same listings (all unchanged), ingest with the analyser inside the clock, and the same through `ingest_jsonl`
as `korgwatch ingest FILE` runs it. The measurements run interleaved (A B C … A B C …, --runs rounds, each on
fresh files), so a noisy minute on a shared machine hits every one of them alike; each prints min/median/max.

Part 2 (--grow N, e.g. 1,000,000): one korgwatch store and one 4-table raw store grow side by side in slices of
--step listings (storage layer, analyses cached; each slice a new seed, ids and times continuing). Every slice
prints both rates and their ratio; the end prints the last slice's rate over the first's (target >= 0.8).

The inputs are frozen out of the cyclic collector's sight (gc.freeze) before any clock starts, so that the
benchmark's own records and cached analyses are not walked on every full collection of whichever run
allocates most.
Run: .venv/bin/python benchmarks/bench_ingest.py [--n 10000,100000] [--grow 1000000 --step 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from db.engine import make_engine, session_scope
from db.ingest import Analyser, ingest_jsonl, ingest_records
from db.migrate import upgrade_engine
from db.records import content_hash
from korgwatch.paths import config_dir
from pipeline.analyse import analyse_listing
from pipeline.rules import Rules, load_rules

MODELS = [
    ("MS-10", "13"),
    ("MS-20", "14"),
    ("SQ-10", "15"),
    ("Mono/Poly", "37"),
    ("PolySix", "38"),
    ("Delta", "28"),
]
SOURCES = ["reverb", "matrixsynth", "ebay", "yahoo_auctions"]
SEED = 1977
TABLES = ("listings", "instruments", "appearances", "flags")


def generate(n: int, seed: int = SEED, first: int = 0) -> list[dict[str, Any]]:
    """Listings like the crawler's: most name a model and a serial, some none, a few a misread serial.

    Listing i (ids, URLs, photos, posted time) counts from `first`, so successive calls can continue a store.
    """
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    records = []
    for i in range(first, first + n):
        model, prefix = rng.choice(MODELS)
        roll = rng.random()
        if roll < 0.7:
            title = f"Korg {model} vintage synth s/n {prefix}{rng.randrange(10000):04d}"
        elif roll < 0.8:
            title = f"Korg {model} serial {rng.randrange(100000, 999999)}"
        else:
            title = f"Korg {model} analog synthesizer, serviced"
        records.append(
            {
                "source": SOURCES[i % len(SOURCES)],
                "url": f"https://example.com/{i}",
                "external_id": str(i),
                "title": title,
                "body": "Works perfectly. Local pickup or shipping worldwide. " * 3,
                "seller": f"seller{rng.randrange(n // 3 + 1)}",
                "posted_at": (start + timedelta(minutes=37 * i)).isoformat(),
                "price": f"{rng.randrange(300, 3000)}.00",
                "currency": "USD",
                "images": [f"https://img.example.com/{i}/{k}.jpg" for k in range(3)],
                "extra": {"condition": "Used"},
            }
        )
    return records


def precomputed(records: list[dict[str, Any]], rules: Rules) -> Analyser:
    """An analyser that looks results up, so the clock measures the storage layer only."""
    results = {(r["title"], r["body"]): analyse_listing(r["title"], r["body"], rules) for r in records}
    return lambda title, body, _rules: results[(title, body)]


def listing_row(r: dict[str, Any], now: str) -> tuple[Any, ...]:
    """A generated record as a raw listings row (LISTING_COLUMNS order), converted as korgwatch stores it."""
    return (
        r["source"], r["external_id"], r["url"], r["title"], r["body"], r["seller"], r["price"], r["currency"],
        r["posted_at"], now, now, json.dumps(r["images"]), content_hash(r["title"], r["body"]), json.dumps(r["extra"]),
    )  # fmt: skip


LISTING_COLUMNS = (
    "source, external_id, url, title, body, seller, price, currency, posted_at, first_seen, last_seen, images,"
    " content_hash, extra"
)


class KorgwatchStore:
    """korgwatch's own store: `ingest_records` one transaction per batch, as the crawler and the CLI do."""

    def __init__(self, path: Path) -> None:
        self.engine = make_engine(f"sqlite:///{path}")
        upgrade_engine(self.engine)

    def write(self, records: list[dict[str, Any]], batch: int, rules: Rules, analyser: Analyser | None) -> float:
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            with session_scope(self.engine) as session:
                ingest_records(session, records[i : i + batch], rules, analyser=analyser)
        return time.perf_counter() - started

    def close(self) -> None:
        self.engine.dispose()


class RawListings:
    """The listing rows alone by plain sqlite3.executemany into a like table (WAL, one commit per batch)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA cache_size = -65536")  # korgwatch's own setting (db/engine.py)
        self.conn.execute(
            "CREATE TABLE listings (id INTEGER PRIMARY KEY, source TEXT, external_id TEXT, url TEXT, title TEXT,"
            " body TEXT, seller TEXT, price NUMERIC, currency TEXT, posted_at TEXT, first_seen TEXT,"
            " last_seen TEXT, images TEXT, content_hash TEXT, extra TEXT, UNIQUE (source, external_id))"
        )

    def write(self, records: list[dict[str, Any]], batch: int) -> float:
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat()
        for i in range(0, len(records), batch):
            rows = [listing_row(r, now) for r in records[i : i + batch]]
            self.conn.executemany(
                f"INSERT INTO listings ({LISTING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
            )
            self.conn.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


class RawAllTables:
    """Raw executemany of every row korgwatch writes (listings, instruments, appearances, flags) into
    korgwatch's own schema (its migrations: the same indexes, constraints and foreign keys), with none of the
    classification: only a set of instruments seen, the least that gets past the one-`new`-per-instrument
    index. The floor for the whole storage layer."""

    def __init__(self, path: Path) -> None:
        engine = make_engine(f"sqlite:///{path}")
        upgrade_engine(engine)
        engine.dispose()
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA cache_size = -65536")  # korgwatch's own setting (db/engine.py)
        self.conn.executemany("INSERT INTO sources (name) VALUES (?)", [(name,) for name in SOURCES])
        self.source_ids = dict(self.conn.execute("SELECT name, id FROM sources"))
        self.listing_id = 0
        self.sighted: set[int] = set()

    def write(self, records: list[dict[str, Any]], batch: int, analyser: Analyser, rules: Rules) -> float:
        conn = self.conn
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat(" ")
        for i in range(0, len(records), batch):
            chunk = records[i : i + batch]
            rows, found = [], []
            for r in chunk:
                self.listing_id += 1
                rows.append((self.source_ids[r["source"]], *listing_row(r, now)[1:]))
                analysis = analyser(r["title"], r["body"], rules)
                found += [(self.listing_id, r["posted_at"], inst) for inst in analysis.instruments if inst.serial]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO listings (source_id, {LISTING_COLUMNS.removeprefix('source, ')}, record_hash)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(*row, row[-2]) for row in rows],  # record_hash: the content hash stands in
            )
            pairs = [(inst.model, inst.serial or "") for _, _, inst in found]
            conn.executemany("INSERT OR IGNORE INTO instruments (model, serial, unit) VALUES (?, ?, 1)", pairs)
            ids = {}
            serials = sorted({serial for _, serial in pairs})
            for k in range(0, len(serials), 500):
                part = serials[k : k + 500]
                query = f"SELECT id, model, serial FROM instruments WHERE serial IN ({','.join('?' * len(part))})"
                ids.update({(m, s): n for n, m, s in conn.execute(query, part)})
            appearances = []
            for lid, posted, inst in found:
                iid = ids[(inst.model, inst.serial)]
                kind = "duplicate_sale" if iid in self.sighted else "new"
                self.sighted.add(iid)
                span = inst.serial_candidate
                appearances.append(
                    (
                        lid, iid, inst.model, inst.serial, kind, 0, "pending" if inst.flags else "counted",
                        span.raw if span else None, span.field if span else None, span.start if span else None,
                        span.end if span else None, json.dumps(list(inst.fits)), posted, now,
                    )
                )  # fmt: skip
            conn.executemany(
                "INSERT OR IGNORE INTO appearances (listing_id, instrument_id, detected_model, detected_serial,"
                " kind, kind_locked, status, serial_raw, serial_field, serial_start, serial_end, fits, seen_at,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                appearances,
            )
            conn.executemany(
                "INSERT INTO flags (listing_id, code, details, status, created_at) VALUES (?,?,?,?,?)",
                [(lid, f.code, json.dumps(f.to_dict()), "open", now) for lid, _, inst in found for f in inst.flags],
            )
            conn.execute("COMMIT")
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


def once(store: Any, write: Callable[[Any], float]) -> float:
    """Seconds `write` takes on a store opened for it alone (opening and closing outside the clock)."""
    try:
        return write(store)
    finally:
        store.close()


def bench_ingest_file(path: Path, db: Path, batch: int, rules: Rules) -> float:
    """`korgwatch ingest FILE`: JSON Lines parsed, checked, analysed and stored, as the command does it."""
    engine = make_engine(f"sqlite:///{db}")
    upgrade_engine(engine)
    started = time.perf_counter()
    summary = ingest_jsonl(path, engine, rules, batch_size=batch)
    elapsed = time.perf_counter() - started
    engine.dispose()
    if summary.errors:
        raise SystemExit(f"ingest reported errors: {summary.errors[:3]}")
    return elapsed


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table, to show that the raw baseline wrote the rows korgwatch did."""
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def interleaved(runs: int, measures: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    """Seconds per run of each measurement, run in rounds (A B C, A B C, …): noise falls on all alike."""
    times: dict[str, list[float]] = {name: [] for name in measures}
    for i in range(runs):
        for name, measure in measures.items():
            times[name].append(measure(i))
    return times


def spread(n: int, seconds: list[float]) -> str:
    """Rates as 'median (min–max)': the median is the figure; the spread shows the noise."""
    rates = sorted(n / s for s in seconds)
    return f"{statistics.median(rates):>9,.0f} listings/s  (min {rates[0]:,.0f}, max {rates[-1]:,.0f})"


def frozen_inputs() -> None:
    """Keep the benchmark's own inputs out of the collector's walks (see the module docstring)."""
    gc.collect()
    gc.freeze()


def empty_store(n: int, batch: int, runs: int, rules: Rules, folder: Path) -> None:
    """Part 1: n listings into empty stores, every measurement interleaved with the others."""
    records = generate(n)
    cached = precomputed(records, rules)
    jsonl = folder / f"listings{n}.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    frozen_inputs()

    def files(name: str, i: int) -> Path:
        return folder / f"{name}{n}_{i}.sqlite"

    def raw(i: int) -> float:
        return once(RawListings(files("raw", i)), lambda s: s.write(records, batch))

    def raw_all(i: int) -> float:
        return once(RawAllTables(files("all", i)), lambda s: s.write(records, batch, cached, rules))

    def storage(i: int) -> float:
        return once(KorgwatchStore(files("storage", i)), lambda s: s.write(records, batch, rules, cached))

    def again(i: int) -> float:  # the store `storage` just filled, every listing unchanged
        return once(KorgwatchStore(files("storage", i)), lambda s: s.write(records, batch, rules, cached))

    def full(i: int) -> float:
        return once(KorgwatchStore(files("full", i)), lambda s: s.write(records, batch, rules, None))

    def command(i: int) -> float:
        return bench_ingest_file(jsonl, files("cmd", i), batch, rules)

    times = interleaved(
        runs,
        {"raw": raw, "raw_all": raw_all, "storage": storage, "again": again, "full": full, "command": command},
    )
    written, raw_written = row_counts(files("storage", 0)), row_counts(files("all", 0))
    gc.unfreeze()
    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    print(f"\n== {n:,} listings into an empty store, batches of {batch:,}; {runs} interleaved runs each ==")
    print("baselines, raw sqlite3.executemany:")
    print("  the listing rows                         " + spread(n, times["raw"]))
    print("  every row korgwatch writes (4 tables)    " + spread(n, times["raw_all"]))
    print(f"  rows: {', '.join(f'{raw_written[t]:,} {t}' for t in TABLES)}")
    if raw_written != written:
        print(f"  (korgwatch wrote {', '.join(f'{written[t]:,} {t}' for t in TABLES)})")
    print("korgwatch:")
    print("  storage alone (analyses cached)          " + spread(n, times["storage"]))
    print("  re-crawl, every listing unchanged        " + spread(n, times["again"]))
    print("  ingest with analysis and classification  " + spread(n, times["full"]))
    print("  the same from a JSON Lines file (CLI)    " + spread(n, times["command"]))
    print("as a share of the raw rate (medians):")
    print(f"  storage alone, of the 4-table raw write (the same rows):  {median['raw_all'] / median['storage']:.2f}")
    print(f"  ingest with analysis, of the 4-table raw write:           {median['raw_all'] / median['full']:.2f}")
    print(f"  ingest with analysis, of the listing rows alone:          {median['raw'] / median['full']:.2f}")


def growth(total: int, step: int, batch: int, rules: Rules, folder: Path) -> None:
    """Part 2: one korgwatch store and one raw 4-table store grow side by side, slice by slice."""
    print(f"\n== growth: {total:,} listings in slices of {step:,}, batches of {batch:,} (analyses cached) ==")
    print(f"{'in store':>10} {'korgwatch/s':>12} {'raw 4-table/s':>14} {'ratio':>6}")
    store, raw = KorgwatchStore(folder / "grow.sqlite"), RawAllTables(folder / "grow_raw.sqlite")
    rates: list[tuple[float, float]] = []
    done = k = 0
    try:
        while done < total:
            size = min(step, total - done)
            records = generate(size, seed=SEED + k, first=done)
            cached = precomputed(records, rules)
            frozen_inputs()
            if k % 2 == 0:  # A B, B A: neither always runs second
                ours = store.write(records, batch, rules, cached)
                theirs = raw.write(records, batch, cached, rules)
            else:
                theirs = raw.write(records, batch, cached, rules)
                ours = store.write(records, batch, rules, cached)
            gc.unfreeze()
            del records, cached
            done += size
            k += 1
            rates.append((size / ours, size / theirs))
            print(f"{done:>10,} {size / ours:>12,.0f} {size / theirs:>14,.0f} {theirs / ours:>6.2f}", flush=True)
    finally:
        store.close()
        raw.close()
    (first, first_raw), (last, last_raw) = rates[0], rates[-1]
    print(
        f"last slice / first slice: korgwatch {last / first:.2f} (target >= 0.8),"
        f" raw 4-table {last_raw / first_raw:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", default="10000,100000", help="listings per empty-store measurement, comma-separated (0: none)"
    )
    parser.add_argument("--batch", type=int, default=5_000, help="records per transaction")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of each empty-store measurement")
    parser.add_argument("--grow", type=int, default=0, help="listings for the growth measurement (0: none)")
    parser.add_argument("--step", type=int, default=100_000, help="listings per growth slice")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    args = parser.parse_args()
    sizes = [int(part.replace("_", "")) for part in args.n.split(",") if int(part.replace("_", ""))]
    rules = load_rules(config_dir())
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            empty_store(n, args.batch, args.runs, rules, Path(tmp))
    if args.grow:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            growth(args.grow, args.step, args.batch, rules, Path(tmp))


if __name__ == "__main__":
    main()
