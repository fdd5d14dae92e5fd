"""Ingest speed: N generated listings into a fresh SQLite file, beside raw `sqlite3.executemany` in the
same run. Issue 3's target: ingest with analysis and classification at least 1/3 of the raw rate.

Two raw baselines, both plain executemany in WAL mode with one commit per batch, as korgwatch commits:
- every row korgwatch writes for these listings (listings, instruments, appearances, flags), into korgwatch's
  own schema (its migrations: the same indexes, constraints, foreign keys and page cache), with none of its
  work: the same rows, written bare. The rows written are counted and printed, to show they are the same;
- the listing rows alone, into a one-table schema with only its unique key: a floor no storing of sightings
  can come near (the analyser alone takes twice its time), printed for comparison with earlier figures.
korgwatch figures: storage alone (analyses computed before the clock starts: what db/ can be held to), a
re-crawl of the same listings (all unchanged), ingest with the analyser running inside the clock, and the
same through `ingest_jsonl`, as `korgwatch ingest FILE` runs it (JSON parsing included).

Each figure is the fastest of --runs runs: on a shared machine noise only ever adds time. The inputs are
frozen out of the cyclic collector's sight (gc.freeze) before any clock starts, so that the benchmark's own
100,000 records and cached analyses are not walked on every full collection of whichever run allocates most.
Run: .venv/bin/python benchmarks/bench_ingest.py --n 100000
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
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


def generate(n: int, seed: int = 1977, first: int = 0) -> list[dict[str, Any]]:
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


def bench_korgwatch(
    records: list[dict[str, Any]], path: Path, batch: int, rules: Rules, analyser: Analyser | None = None
) -> float:
    engine = make_engine(f"sqlite:///{path}")
    upgrade_engine(engine)
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        with session_scope(engine) as session:
            ingest_records(session, records[i : i + batch], rules, analyser=analyser)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def bench_raw(records: list[dict[str, Any]], path: Path, batch: int) -> float:
    """The same listing rows by plain sqlite3.executemany into a like table (WAL, one commit per batch)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")  # korgwatch's own setting (db/engine.py)
    conn.execute(
        "CREATE TABLE listings (id INTEGER PRIMARY KEY, source TEXT, external_id TEXT, url TEXT, title TEXT,"
        " body TEXT, seller TEXT, price NUMERIC, currency TEXT, posted_at TEXT, first_seen TEXT,"
        " last_seen TEXT, images TEXT, content_hash TEXT, extra TEXT, UNIQUE (source, external_id))"
    )
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat()
    for i in range(0, len(records), batch):
        rows = [listing_row(r, now) for r in records[i : i + batch]]
        conn.executemany(f"INSERT INTO listings ({LISTING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def bench_raw_all_tables(
    records: list[dict[str, Any]], path: Path, batch: int, analyser: Analyser, rules: Rules
) -> float:
    """Raw executemany of every row korgwatch writes (listings, instruments, appearances, flags) into
    korgwatch's own schema (its migrations: the same indexes, constraints and foreign keys), with none of the
    classification: only a set of instruments seen, the least that gets past the one-`new`-per-instrument
    index. The floor for the whole storage layer."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_engine(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")  # korgwatch's own setting (db/engine.py)
    conn.executemany("INSERT INTO sources (name) VALUES (?)", [(name,) for name in SOURCES])
    source_ids = dict(conn.execute("SELECT name, id FROM sources"))
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat(" ")
    listing_id = 0
    sighted: set[int] = set()
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        rows, found = [], []
        for r in chunk:
            listing_id += 1
            rows.append((source_ids[r["source"]], *listing_row(r, now)[1:]))
            analysis = analyser(r["title"], r["body"], rules)
            found += [(listing_id, r["posted_at"], inst) for inst in analysis.instruments if inst.serial]
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
            kind = "duplicate_sale" if iid in sighted else "new"
            sighted.add(iid)
            span = inst.serial_candidate
            appearances.append(
                (
                    lid, iid, inst.model, inst.serial, kind, 0, "pending" if inst.flags else "counted",
                    span.raw if span else None, span.field if span else None, span.start if span else None,
                    span.end if span else None, json.dumps(list(inst.fits)), posted, now,
                )
            )  # fmt: skip
        conn.executemany(
            "INSERT OR IGNORE INTO appearances (listing_id, instrument_id, detected_model, detected_serial, kind,"
            " kind_locked, status, serial_raw, serial_field, serial_start, serial_end, fits, seen_at, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            appearances,
        )
        conn.executemany(
            "INSERT INTO flags (listing_id, code, details, status, created_at) VALUES (?,?,?,?,?)",
            [(lid, f.code, json.dumps(f.to_dict()), "open", now) for lid, _, inst in found for f in inst.flags],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


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


TABLES = ("listings", "instruments", "appearances", "flags")


def best(runs: int, measure: Callable[[int], float]) -> float:
    """The fastest of `runs` runs (run i gets its own files): noise on a shared machine only ever adds time."""
    return min(measure(i) for i in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="listings to ingest (default 100,000)")
    parser.add_argument("--batch", type=int, default=5_000, help="records per transaction")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement; the fastest counts")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    args = parser.parse_args()
    records = generate(args.n)
    rules = load_rules(config_dir())
    cached = precomputed(records, rules)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        jsonl = folder / "listings.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        # The inputs (records, cached analyses) live all through the run: frozen, the collector does not
        # walk them on every full pass, which would charge the benchmark's own memory to whichever
        # measurement happens to allocate most.
        gc.collect()
        gc.freeze()
        raw = best(args.runs, lambda i: bench_raw(records, folder / f"raw{i}.sqlite", args.batch))
        raw_all = best(
            args.runs, lambda i: bench_raw_all_tables(records, folder / f"all{i}.sqlite", args.batch, cached, rules)
        )
        storage = best(
            args.runs, lambda i: bench_korgwatch(records, folder / f"storage{i}.sqlite", args.batch, rules, cached)
        )
        again = best(
            args.runs, lambda i: bench_korgwatch(records, folder / "storage0.sqlite", args.batch, rules, cached)
        )
        full = best(args.runs, lambda i: bench_korgwatch(records, folder / f"full{i}.sqlite", args.batch, rules))
        command = best(args.runs, lambda i: bench_ingest_file(jsonl, folder / f"cmd{i}.sqlite", args.batch, rules))
        written, raw_written = row_counts(folder / "storage0.sqlite"), row_counts(folder / "all0.sqlite")
    n = args.n
    rate = "{:>10,.0f} listings/s ({:.2f} s)"
    print(f"listings: {n:,} in batches of {args.batch:,}; fastest of {args.runs} runs each")
    print("baselines, raw sqlite3.executemany:")
    print("  the listing rows                       " + rate.format(n / raw, raw))
    print("  every row korgwatch writes (4 tables)  " + rate.format(n / raw_all, raw_all))
    print(f"  rows: {', '.join(f'{raw_written[t]:,} {t}' for t in TABLES)}")
    if raw_written != written:
        print(f"  (korgwatch wrote {', '.join(f'{written[t]:,} {t}' for t in TABLES)})")
    print("korgwatch:")
    print("  storage alone (analyses cached)        " + rate.format(n / storage, storage))
    print("  re-crawl, every listing unchanged      " + rate.format(n / again, again))
    print("  ingest with analysis and classification" + rate.format(n / full, full))
    print("  the same from a JSON Lines file (CLI)  " + rate.format(n / command, command))
    print("ingest with analysis and classification, as a share of the raw rate (target >= 0.33):")
    print(f"  of the 4-table raw write (the same rows):  {raw_all / full:.2f}")
    print(f"  of the listing rows alone:                 {raw / full:.2f}")


if __name__ == "__main__":
    main()
