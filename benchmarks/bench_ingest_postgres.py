"""Ingest rate as PostgreSQL grows: N generated listings through `ingest_records` into a fresh PostgreSQL database,
measured slice by slice, beside raw psycopg `executemany` and `COPY` of the same listing rows into plain tables in
the same database, and raw `executemany` of every row korgwatch writes (4 tables) into a second database with
korgwatch's schema, in the same run (interleaved: the order of the four turns with every slice).

After every slice of --step listings one row: listings in the store, the slice's korgwatch rate (storage layer:
the analyses are computed before the clock starts, as in benchmarks/bench_ingest.py), the raw executemany rate
and the COPY rate for the same rows, korgwatch's rate over executemany's (issue 14's target: >= 0.33), the time
of a `korgwatch history` look-up (`db.queries.history`) of one often-seen serial with the number
of appearances it returned, and the access method EXPLAIN shows per table for that look-up (Index / Bitmap =
served by an index, Seq = a full scan). The listings come from bench_ingest.generate (one seed per slice,
ids continuing across slices), so serials repeat and appearances are classified new / duplicate_sale; since its
photos never recur (nor, within the repost window, a seller), REPOST_SHARE of them are turned into relistings
(same seller, text and photos as a listing a few days older; their own id, URL and time) to classify reposts too.
No assertions on time: the figures are to be read beside the baseline.

Planner statistics: a server with autovacuum off never analyses the growing tables, so its plans stay those of
an empty store. Then, unless --no-analyze, the store's tables are ANALYZEd after each slice, outside the clock,
standing in for the autovacuum daemon a default server runs; --no-analyze measures the server as configured.

The database (its name must start with kw_bench_ or bench_) is dropped and created fresh, and dropped at the end
unless --keep. Run (about 10 to 25 minutes for the default million on a small machine):
    .venv/bin/python benchmarks/bench_ingest_postgres.py [--n 1000000] [--step 100000] [--batch 200]
        [--db postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest] [--keep] [--no-analyze]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from bench_ingest import LISTING_COLUMNS, SOURCES, generate, listing_row, precomputed
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from crawler.settings import KORGWATCH_BATCH_SIZE
from db import queries
from db.engine import make_engine, normalise_url, session_scope
from db.ingest import Analyser, IngestSummary, ingest_records
from db.migrate import upgrade
from korgwatch.paths import config_dir
from pipeline.rules import Rules, load_rules

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest"
SCRATCH_PREFIXES = ("kw_bench_", "bench_")
RAW_TABLE = "bench_raw_listings"
COPY_TABLE = "bench_copy_listings"
SEED = 1977
LOOKUP_REPEATS = 5
REPOST_SHARE = 0.03
REPOST_REACH = 1000  # a relisting copies one of the 1,000 listings before it: at most ~26 days older
PLAN_TABLES = ("instruments", "appearances", "listings", "sources")
STORE_TABLES = ("sources", "listings", "instruments", "appearances", "flags", "register_entries")
SCAN = re.compile(r"(Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan) (?:using \S+ )?on (\w+)")
SHORT = {"Seq Scan": "Seq", "Index Only Scan": "IndexOnly", "Index Scan": "Index", "Bitmap Heap Scan": "Bitmap"}


def libpq_url(url: URL, database: str | None = None) -> str:
    """The URL as psycopg.connect takes it, optionally for another database of the same server."""
    url = url.set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def drop_database(url: URL, *, create: bool = False) -> None:
    """Drop the scratch database `url` names (and, with `create`, make it again, empty)."""
    name = sql.Identifier(url.database or "")
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(name))


def recreate_database(url: URL) -> None:
    drop_database(url, create=True)


def add_reposts(records: list[dict[str, Any]], seed: int) -> None:
    """Turn REPOST_SHARE of the records into relistings of a recent record (in place)."""
    rng = random.Random(seed)
    for j in range(1, len(records)):
        if rng.random() < REPOST_SHARE:
            original = records[rng.randrange(max(0, j - REPOST_REACH), j)]
            for name in ("title", "body", "seller", "images", "price"):
                records[j][name] = original[name]


def create_raw_table(conn: psycopg.Connection[Any], name: str = RAW_TABLE) -> None:
    """A plain table with the listings columns in korgwatch's PostgreSQL types, its key and unique key only."""
    conn.execute(
        f"CREATE TABLE {name} (id SERIAL PRIMARY KEY, source TEXT, external_id VARCHAR(255), url TEXT,"
        " title TEXT, body TEXT, seller VARCHAR(255), price NUMERIC(14, 2), currency VARCHAR(8),"
        " posted_at TIMESTAMPTZ, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, images JSON,"
        " content_hash VARCHAR(64), extra JSON, UNIQUE (source, external_id))"
    )
    conn.commit()


def ingest_raw(conn: psycopg.Connection[Any], records: list[dict[str, Any]], batch: int) -> float:
    """The listing rows by plain executemany, one transaction per batch; seconds taken."""
    insert = f"INSERT INTO {RAW_TABLE} ({LISTING_COLUMNS}) VALUES ({', '.join(['%s'] * 14)})"
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat()
    with conn.cursor() as cursor:
        for i in range(0, len(records), batch):
            cursor.executemany(insert, [listing_row(r, now) for r in records[i : i + batch]])
            conn.commit()
    return time.perf_counter() - started


def ingest_copy(conn: psycopg.Connection[Any], records: list[dict[str, Any]], batch: int) -> float:
    """The same listing rows by COPY FROM STDIN, one transaction per batch; seconds taken."""
    copy = f"COPY {COPY_TABLE} ({LISTING_COLUMNS}) FROM STDIN"
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat()
    with conn.cursor() as cursor:
        for i in range(0, len(records), batch):
            with cursor.copy(copy) as stream:
                for r in records[i : i + batch]:
                    stream.write_row(listing_row(r, now))
            conn.commit()
    return time.perf_counter() - started


class RawAllTables:
    """Raw executemany of every row korgwatch writes (listings, instruments, appearances, flags) into korgwatch's
    own schema in a database of its own (its migrations: the same indexes, constraints and foreign keys), with
    none of korgwatch's work: only a set of instruments seen, the least that passes the one-`new`-per-instrument
    index. As bench_ingest.RawAllTables does on SQLite: the floor for the whole storage layer."""

    def __init__(self, url: URL) -> None:
        recreate_database(url)
        upgrade(url.render_as_string(hide_password=False))
        self.conn = psycopg.connect(libpq_url(url))
        with self.conn.cursor() as cursor:
            cursor.executemany("INSERT INTO sources (name) VALUES (%s)", [(name,) for name in SOURCES])
        self.source_ids: dict[str, int] = dict(self.conn.execute("SELECT name, id FROM sources").fetchall())
        self.conn.commit()
        self.listing_id = 0
        self.sighted: set[int] = set()

    def write(self, records: list[dict[str, Any]], batch: int, analyser: Analyser, rules: Rules) -> float:
        conn = self.conn
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat(" ")
        for i in range(0, len(records), batch):
            rows, found = [], []
            for r in records[i : i + batch]:
                self.listing_id += 1
                row = listing_row(r, now)
                rows.append((self.listing_id, self.source_ids[r["source"]], *row[1:], row[-2]))
                analysis = analyser(r["title"], r["body"], rules)
                found += [(self.listing_id, r["posted_at"], inst) for inst in analysis.instruments if inst.serial]
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO listings (id, source_id, {LISTING_COLUMNS.removeprefix('source, ')}, record_hash)"
                    f" VALUES ({', '.join(['%s'] * 16)})",
                    rows,  # record_hash: the content hash stands in
                )
                pairs = sorted({(inst.model, inst.serial or "") for _, _, inst in found})
                cursor.executemany(
                    "INSERT INTO instruments (model, serial, unit) VALUES (%s, %s, 1) ON CONFLICT DO NOTHING", pairs
                )
                cursor.execute(
                    "SELECT id, model, serial FROM instruments WHERE serial = ANY(%s)", ([s for _, s in pairs],)
                )
                ids = {(m, s): n for n, m, s in cursor.fetchall()}
                appearances = []
                for lid, posted, inst in found:
                    iid = ids[(inst.model, inst.serial)]
                    kind = "duplicate_sale" if iid in self.sighted else "new"
                    self.sighted.add(iid)
                    span = inst.serial_candidate
                    appearances.append(
                        (
                            lid, iid, inst.model, inst.serial, kind, False, "pending" if inst.flags else "counted",
                            span.raw if span else None, span.field if span else None,
                            span.start if span else None, span.end if span else None,
                            json.dumps(list(inst.fits)), posted, now,
                        )
                    )  # fmt: skip
                cursor.executemany(
                    "INSERT INTO appearances (listing_id, instrument_id, detected_model, detected_serial, kind,"
                    " kind_locked, status, serial_raw, serial_field, serial_start, serial_end, fits, seen_at,"
                    f" created_at) VALUES ({', '.join(['%s'] * 14)}) ON CONFLICT DO NOTHING",
                    appearances,
                )
                cursor.executemany(
                    "INSERT INTO flags (listing_id, code, details, status, created_at) VALUES (%s, %s, %s, %s, %s)",
                    [(lid, f.code, json.dumps(f.to_dict()), "open", now) for lid, _, inst in found for f in inst.flags],
                )
            conn.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


def ingest_korgwatch(
    engine: Engine, records: list[dict[str, Any]], batch: int, rules: Rules, analyser: Analyser, total: IngestSummary
) -> float:
    """The records through ingest_records, one transaction per batch (as the crawler's pipeline does); seconds."""
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        with session_scope(engine) as session:
            total.add(ingest_records(session, records[i : i + batch], rules, analyser=analyser))
    return time.perf_counter() - started


def busiest_serial(records: list[dict[str, Any]], rules: Rules, analyser: Analyser) -> str:
    """The serial the analyser finds most often in these records: its history grows with every slice."""
    found = Counter(
        inst.serial for r in records for inst in analyser(r["title"], r["body"], rules).instruments if inst.serial
    )
    return found.most_common(1)[0][0]


def time_history(engine: Engine, serial: str) -> tuple[float, int]:
    """Median milliseconds of `db.queries.history` over LOOKUP_REPEATS runs, and the appearances it returned."""
    times, found = [], 0
    for _ in range(LOOKUP_REPEATS):
        with session_scope(engine) as session:
            started = time.perf_counter()
            found = len(queries.history(session, serial))
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, found


def history_plan(engine: Engine, serial: str) -> dict[str, str]:
    """Per table, how EXPLAIN says the history look-up reads it."""
    compiled = queries.history_statement(serial).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}")]
    methods: dict[str, str] = {}
    for line in plan:
        for method, table in SCAN.findall(line):
            methods.setdefault(table, SHORT[method])
    return methods


def autovacuum_on(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SHOW autovacuum").fetchone()
    conn.commit()
    return bool(row and row[0] == "on")


def analyze_store(conn: psycopg.Connection[Any]) -> None:
    """What autovacuum's analyse would have done by now (korgwatch's tables only, not the baseline's)."""
    conn.execute(f"ANALYZE {', '.join(STORE_TABLES)}")
    conn.commit()


def database_mb(conn: psycopg.Connection[Any]) -> float:
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    conn.commit()
    return (row[0] if row else 0) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB, help=f"PostgreSQL URL, database name kw_bench_* ({DEFAULT_DB})")
    parser.add_argument("--n", type=int, default=1_000_000, help="listings in all (default 1,000,000)")
    parser.add_argument("--step", type=int, default=100_000, help="listings per measured slice (default 100,000)")
    parser.add_argument(
        "--batch",
        type=int,
        default=KORGWATCH_BATCH_SIZE,
        help=f"records per transaction (default {KORGWATCH_BATCH_SIZE}, the crawler's KORGWATCH_BATCH_SIZE)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--no-analyze", action="store_true", help="no ANALYZE between slices even if the server's autovacuum is off"
    )
    args = parser.parse_args()
    url = make_url(normalise_url(args.db))
    if url.get_backend_name() != "postgresql" or not (url.database or "").startswith(SCRATCH_PREFIXES):
        parser.error("--db must be a PostgreSQL URL naming a database bench_* (it is dropped and re-created)")

    rules = load_rules(config_dir())
    recreate_database(url)
    engine = make_engine(url.render_as_string(hide_password=False))
    raw = psycopg.connect(libpq_url(url))
    raw_url = url.set(database=f"{url.database}_raw")
    raw_all = RawAllTables(raw_url)
    try:
        upgrade(url.render_as_string(hide_password=False))
        create_raw_table(raw)
        create_raw_table(raw, COPY_TABLE)
        server = raw.execute("SHOW server_version").fetchone()
        raw.commit()
        print(f"PostgreSQL {server[0] if server else '?'} at {url.render_as_string(hide_password=True)}")
        print(f"{args.n:,} listings in slices of {args.step:,}, {args.batch:,} records per transaction;")
        print("korgwatch = ingest_records with analyses cached (storage layer), raw = psycopg executemany of the")
        print("same listing rows into a plain table, COPY = the same rows by COPY FROM STDIN into another; ratio =")
        print("korgwatch / raw (target >= 0.33); 4-table = every row korgwatch writes (listings, instruments,")
        print("appearances, flags) by raw executemany into korgwatch's schema in a database of its own; ratio4 =")
        print("korgwatch / 4-table. The four run interleaved, their order turning per slice.")
        print(f"history = db.queries.history, median of {LOOKUP_REPEATS} runs.")
        print(f"plan: access method per table ({', '.join(PLAN_TABLES)}); sources has 4 rows.")
        analyze = not args.no_analyze and not autovacuum_on(raw)
        if analyze:
            print("autovacuum is off on this server: ANALYZE after each slice (outside the clock) stands in for it.")
        else:
            print(f"autovacuum {'on' if autovacuum_on(raw) else 'off'}; no ANALYZE by the benchmark.")
        print()
        header = (
            f"{'listings':>10} {'korgwatch/s':>12} {'raw/s':>10} {'COPY/s':>10} {'ratio':>6} {'4-table/s':>10}"
            f" {'ratio4':>6} {'history ms':>11}"
            f" {'apps':>5}"
            f" {'db MB':>7}  plan"
        )
        print(header)
        print("-" * (len(header) + 30), flush=True)
        total = IngestSummary()
        serial = ""
        done = slice_number = 0
        spent_korgwatch = spent_raw = spent_copy = spent_all = 0.0
        first_rate = last_rate = 0.0
        while done < args.n:
            size = min(args.step, args.n - done)
            records = generate(size, seed=SEED + slice_number, first=done)
            add_reposts(records, SEED + slice_number)
            cached = precomputed(records, rules)
            serial = serial or busiest_serial(records, rules, cached)
            measures: dict[str, Callable[[list[dict[str, Any]], Analyser], float]] = {
                "raw": lambda rows, _: ingest_raw(raw, rows, args.batch),
                "raw_all": lambda rows, analyser: raw_all.write(rows, args.batch, analyser, rules),
                "copy": lambda rows, _: ingest_copy(raw, rows, args.batch),
                "korgwatch": lambda rows, analyser: ingest_korgwatch(engine, rows, args.batch, rules, analyser, total),
            }
            order = list(measures)
            turn = slice_number % len(order)
            order = order[turn:] + order[:turn]  # A B C D, B C D A, C D A B, ...
            seconds = {name: measures[name](records, cached) for name in order}
            raw_s, copy_s, korgwatch_s = seconds["raw"], seconds["copy"], seconds["korgwatch"]
            all_s = seconds["raw_all"]
            if analyze:
                analyze_store(raw)
            done += size
            slice_number += 1
            spent_korgwatch += korgwatch_s
            spent_raw += raw_s
            spent_all += all_s
            spent_copy += copy_s
            last_rate = size / korgwatch_s
            first_rate = first_rate or last_rate
            lookup_ms, appearances = time_history(engine, serial)
            plan = history_plan(engine, serial)
            methods = "/".join(plan.get(table, "-") for table in PLAN_TABLES)
            print(
                f"{done:>10,} {size / korgwatch_s:>12,.0f} {size / raw_s:>10,.0f} {size / copy_s:>10,.0f}"
                f" {raw_s / korgwatch_s:>6.2f} {size / all_s:>10,.0f} {all_s / korgwatch_s:>6.2f}"
                f" {lookup_ms:>11.2f} {appearances:>5} {database_mb(raw):>7,.0f}  {methods}",
                flush=True,
            )
            del records, cached
        print(
            f"\nall {done:,}: korgwatch {done / spent_korgwatch:,.0f} listings/s ({spent_korgwatch:.0f} s),"
            f" raw {done / spent_raw:,.0f} listings/s ({spent_raw:.0f} s), COPY {done / spent_copy:,.0f} listings/s"
            f" ({spent_copy:.0f} s); korgwatch / raw {spent_raw / spent_korgwatch:.2f} (target >= 0.33),"
            f" raw / COPY {spent_copy / spent_raw:.2f}"
        )
        print(
            f"every row korgwatch writes (4 tables) by raw executemany: {done / spent_all:,.0f} listings/s"
            f" ({spent_all:.0f} s); korgwatch / 4-table raw {spent_all / spent_korgwatch:.2f}"
        )
        print(f"last slice / first slice: korgwatch {last_rate / first_rate:.2f} (target >= 0.8)")
        print(f"history serial: {serial}")
        print(
            f"classified: {total.listings_new:,} listings new, {total.instruments_new:,} instruments new,"
            f" {total.duplicate_sales:,} duplicate sales, {total.reposts:,} reposts, {total.flags_raised:,} flags;"
            f" {len(total.errors)} errors"
        )
    finally:
        raw.close()
        raw_all.close()
        if not args.keep:
            drop_database(raw_url)
        engine.dispose()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
