"""Ingest speed: N generated listings through `ingest_records` into a fresh SQLite file, beside raw
`sqlite3.executemany` of the same listing rows in the same run. Target: storage at least 1/3 of the raw rate.

Three korgwatch figures: the storage layer alone (analyses computed before the clock starts, so the figure
is what db/ can be held to), the full pipeline (the analyser runs inside the clock: its own speed is
benchmarks/bench_analyse.py's business), and a re-crawl of the same listings (all unchanged).
Two raw baselines: the listing rows alone, and every row korgwatch writes (listings, instruments,
appearances, flags) with the same indexes but no classification.
Run: .venv/bin/python benchmarks/bench_ingest.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from db.engine import make_engine, session_scope
from db.ingest import Analyser, content_hash, ingest_records
from db.migrate import upgrade_engine
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
    """Raw executemany of every row korgwatch writes (listings, instruments, appearances, flags), with the
    same indexes but none of the classification: the floor for the whole storage layer."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(
        "CREATE TABLE listings (id INTEGER PRIMARY KEY, source TEXT, external_id TEXT, url TEXT, title TEXT,"
        " body TEXT, seller TEXT, price NUMERIC, currency TEXT, posted_at TEXT, first_seen TEXT,"
        " last_seen TEXT, images TEXT, content_hash TEXT, extra TEXT, UNIQUE (source, external_id));"
        "CREATE TABLE instruments (id INTEGER PRIMARY KEY, model TEXT, serial TEXT, UNIQUE (model, serial));"
        "CREATE INDEX ix_instruments_serial ON instruments (serial);"
        "CREATE TABLE appearances (id INTEGER PRIMARY KEY, listing_id INT, instrument_id INT, model TEXT,"
        " serial TEXT, kind TEXT, status TEXT, field TEXT, start INT, end_ INT, fits TEXT, seen_at TEXT,"
        " UNIQUE (listing_id, model, serial));"
        "CREATE INDEX ix_app ON appearances (instrument_id, seen_at);"
        "CREATE TABLE flags (id INTEGER PRIMARY KEY, listing_id INT, appearance_id INT, code TEXT,"
        " details TEXT, status TEXT, created_at TEXT);"
    )
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat()
    listing_id = 0
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        rows, found = [], []
        for r in chunk:
            listing_id += 1
            rows.append(listing_row(r, now))
            analysis = analyser(r["title"], r["body"], rules)
            found += [(listing_id, r["posted_at"], inst) for inst in analysis.instruments if inst.serial]
        conn.executemany(f"INSERT INTO listings ({LISTING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        pairs = [(inst.model, inst.serial or "") for _, _, inst in found]
        conn.executemany("INSERT OR IGNORE INTO instruments (model, serial) VALUES (?, ?)", pairs)
        ids = {}
        serials = sorted({serial for _, serial in pairs})
        for k in range(0, len(serials), 500):
            part = serials[k : k + 500]
            query = f"SELECT id, model, serial FROM instruments WHERE serial IN ({','.join('?' * len(part))})"
            ids.update({(m, s): n for n, m, s in conn.execute(query, part)})
        conn.executemany(
            "INSERT OR IGNORE INTO appearances (listing_id, instrument_id, model, serial, kind, status, field,"
            " start, end_, fits, seen_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    lid, ids[(inst.model, inst.serial)], inst.model, inst.serial, "new",
                    "pending" if inst.flags else "counted",
                    inst.serial_candidate.field if inst.serial_candidate else None,
                    inst.serial_candidate.start if inst.serial_candidate else None,
                    inst.serial_candidate.end if inst.serial_candidate else None,
                    json.dumps(list(inst.fits)), posted,
                )
                for lid, posted, inst in found
            ],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO flags (listing_id, code, details, status, created_at) VALUES (?,?,?,?,?)",
            [(lid, f.code, json.dumps(f.to_dict()), "open", now) for lid, _, inst in found for f in inst.flags],
        )
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="listings to ingest (default 100,000)")
    parser.add_argument("--batch", type=int, default=5_000, help="records per transaction")
    args = parser.parse_args()
    records = generate(args.n)
    rules = load_rules(config_dir())
    cached = precomputed(records, rules)
    with tempfile.TemporaryDirectory() as tmp:
        raw = bench_raw(records, Path(tmp) / "raw.sqlite", args.batch)
        raw_all = bench_raw_all_tables(records, Path(tmp) / "raw_all.sqlite", args.batch, cached, rules)
        storage = bench_korgwatch(records, Path(tmp) / "storage.sqlite", args.batch, rules, cached)
        again = bench_korgwatch(records, Path(tmp) / "storage.sqlite", args.batch, rules, cached)
        full = bench_korgwatch(records, Path(tmp) / "full.sqlite", args.batch, rules)
    n = args.n
    print(f"listings:                              {n:,} (batches of {args.batch:,})")
    print(f"raw sqlite3.executemany, listings:     {n / raw:10,.0f} listings/s ({raw:.2f} s)")
    print(f"raw sqlite3.executemany, all tables:   {n / raw_all:10,.0f} listings/s ({raw_all:.2f} s)")
    print(f"korgwatch storage (analysis cached):   {n / storage:10,.0f} listings/s ({storage:.2f} s)")
    print(f"korgwatch re-crawl, all unchanged:     {n / again:10,.0f} listings/s ({again:.2f} s)")
    print(f"korgwatch full pipeline (analyser on): {n / full:10,.0f} listings/s ({full:.2f} s)")
    print(f"ratio storage/raw listings:            {raw / storage:.2f} (target >= 0.33)")
    print(f"ratio storage/raw all tables:          {raw_all / storage:.2f}")
    print(f"ratio full pipeline/raw listings:      {raw / full:.2f}")


if __name__ == "__main__":
    main()
