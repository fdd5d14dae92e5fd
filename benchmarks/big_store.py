"""A large SQLite store for the benchmarks that read (review pages, read commands), built once and kept.

`big_store(n)` returns the path of a store of `n` listings made by the project's own generator
(`bench_ingest.generate`, one seed per slice of 100,000, ids continuing across slices) and stored by
`ingest_records` with the analyser, as `korgwatch ingest` stores them. Building 1,000,000 listings takes minutes,
so the store is kept between runs: in $KORGWATCH_BENCH_DIR, else ~/.cache/korgwatch-bench, as `store-N.sqlite`.

A half-built store is never reused: the build writes `store-N.sqlite.building` and renames it into place only
after the last slice committed and the WAL was checkpointed into the file; a crash leaves the `.building` file,
which the next call deletes and builds again. A lock file makes a second process wait for the first one's build
instead of building the same store beside it. The kept store stays at the schema it was built with, so that
branches with other migrations can share it: a caller that writes, or needs a newer schema, works on
`scratch_copy(n, folder)` (a copy upgraded to the newest schema, as a user's store would be).
Run: .venv/bin/python benchmarks/big_store.py --n 1000000   (prints the path)
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

from bench_ingest import generate

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from korgwatch.paths import config_dir
from pipeline.rules import load_rules

SLICE = 100_000  # listings generated at a time (one seed each), so memory stays bounded at any n
BATCH = 5_000  # listings per transaction, as bench_ingest stores them
SEED = 1977
DIR_ENV = "KORGWATCH_BENCH_DIR"


def bench_dir() -> Path:
    """Where kept stores live: $KORGWATCH_BENCH_DIR, else ~/.cache/korgwatch-bench."""
    folder = Path(os.environ.get(DIR_ENV) or Path.home() / ".cache" / "korgwatch-bench").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def store_path(n: int) -> Path:
    """The kept store of `n` listings (it may not exist yet)."""
    return bench_dir() / f"store-{n}.sqlite"


def big_store(n: int, *, quiet: bool = False) -> Path:
    """The path of a complete store of `n` generated listings, built now if no complete one is kept."""
    path = store_path(n)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process building it: wait for its store
        if not path.exists():
            build(n, path, quiet=quiet)
    return path


def scratch_copy(n: int, folder: Path) -> Path:
    """A copy of the kept store of `n` listings in `folder`, upgraded to the newest schema: free to write to."""
    copy = folder / f"scratch-{n}.sqlite"
    shutil.copyfile(big_store(n), copy)
    engine = make_engine(f"sqlite:///{copy}")
    upgrade_engine(engine)  # migrations newer than the kept store run here, as on a user's store
    engine.dispose()
    return copy


def build(n: int, path: Path, *, quiet: bool = False) -> None:
    """Ingest `n` generated listings into `path` by way of a `.building` file renamed only when complete."""
    partial = path.with_name(path.name + ".building")
    for leftover in (partial, partial.with_name(partial.name + "-wal"), partial.with_name(partial.name + "-shm")):
        leftover.unlink(missing_ok=True)
    rules = load_rules(config_dir())
    engine = make_engine(f"sqlite:///{partial}")
    upgrade_engine(engine)
    started = time.perf_counter()
    done = slice_number = 0
    while done < n:
        size = min(SLICE, n - done)
        records = generate(size, seed=SEED + slice_number, first=done)
        for i in range(0, size, BATCH):
            with session_scope(engine) as session:
                ingest_records(session, records[i : i + BATCH], rules)
        done += size
        slice_number += 1
        if not quiet:
            print(f"big_store: {done:,} of {n:,} listings ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    engine.dispose()
    with closing(sqlite3.connect(partial)) as conn:  # everything in the main file, so the rename moves all of it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.replace(partial, path)
    for side in ("-wal", "-shm"):
        partial.with_name(partial.name + side).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="listings in the store (default 1,000,000)")
    args = parser.parse_args()
    print(big_store(args.n))


if __name__ == "__main__":
    main()
