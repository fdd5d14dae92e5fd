"""The read commands on a store of a million listings (issue 14, target 4), each beside the raw sqlite3 query it
needs, in the same run, interleaved (A B A B ...).

Each command runs as a real `python -m korgwatch.cli` process, as a user runs it: wall clock from start to
exit (start-up included), CPU time and peak memory of that process (its own rusage), min/median/max over
--runs; its queries are counted in one more, untimed run (SQLAlchemy's before_cursor_execute). The baseline
of each is a bare Python process running the same SQL (compiled from the command's own statement) with the
sqlite3 module and writing the rows as CSV: start-up plus the query, the least any command could take.
Beside them, `python -c pass`: the bare start-up of the interpreter.

Targets: `queue` under 1.5 s, `export --since` (100 k serials or more) under 5 s, every command under 300 MB.
The store is benchmarks/big_store.py's kept one (built the first time: minutes). `--code DIR` runs another
checkout's korgwatch (e.g. the one before this change) on the same store, for before/after figures.
Run: .venv/bin/python benchmarks/bench_read_commands.py --n 1000000
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from big_store import big_store, scratch_copy
from runs import Run, Series, run, seconds
from sqlalchemy.dialects import sqlite

from db import queries

REPO = Path(__file__).resolve().parent.parent
TARGET_QUEUE_S = 1.5
TARGET_EXPORT_S = 5.0
TARGET_RSS_MB = 300.0

# Counts the statements of one command (run as `python -c COUNTER FILE ARGS...`), then writes the number.
COUNTER = """
import sys
from sqlalchemy import Engine, event
count = 0
def seen(*_args):
    global count
    count += 1
event.listen(Engine, "before_cursor_execute", seen)
from korgwatch.cli import app
try:
    app(sys.argv[2:], prog_name="korgwatch")
except SystemExit:
    pass
open(sys.argv[1], "w").write(str(count))
"""

# The baseline: bare Python, sqlite3, the command's SQL, rows out as CSV.
RAW = """
import csv, sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
csv.writer(sys.stdout).writerows(connection.execute(sys.argv[2]))
"""


STATS_SQL = (  # what `stats` reads: the serials known per model (counted sightings and the register)
    "SELECT DISTINCT i.model, i.serial FROM instruments i JOIN appearances a ON a.instrument_id = i.id "
    "AND a.status = 'counted' UNION SELECT model, serial FROM register_entries"
)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[str, ...]
    sql: str  # what the raw baseline runs


def literal(statement: Any) -> str:
    return str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def often_seen_serial(store: Path) -> str:
    """The serial with the most appearances: the longest history."""
    with sqlite3.connect(store) as connection:
        row = connection.execute(
            "SELECT i.serial FROM appearances a JOIN instruments i ON i.id = a.instrument_id "
            "GROUP BY i.serial ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    return str(row[0])


def commands(store: Path, since: date, with_all: bool) -> list[Command]:
    serial = often_seen_serial(store)
    found = [
        Command("queue (first 50, table)", ("queue",), literal(queries.review_queue_statement().limit(51))),
        Command(
            f"export --since {since} (csv)",
            ("export", "--since", since.isoformat(), "-f", "csv"),
            literal(queries.new_serials_statement(since)),
        ),
        Command(
            f"export --since {since} (markdown)",
            ("export", "--since", since.isoformat()),
            literal(queries.new_serials_statement(since)),
        ),
        Command(f"history {serial}", ("history", serial), literal(queries.history_statement(serial))),
        Command("db upgrade (current store)", ("db", "upgrade"), "SELECT version_num FROM alembic_version"),
        Command("stats", ("stats",), STATS_SQL),
    ]
    if with_all:
        every = literal(queries.review_queue_statement())
        found.insert(1, Command("queue --all (csv, streamed)", ("queue", "--all", "-f", "csv"), every))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="listings in the store (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each command and baseline (default 3)")
    parser.add_argument("--since", type=date.fromisoformat, default=date(2020, 1, 1), help="export's --since")
    parser.add_argument("--code", type=Path, default=REPO, help="the korgwatch checkout to run (default: this one)")
    parser.add_argument("--no-all", action="store_true", help="leave out `queue --all` (older code has none)")
    parser.add_argument("--no-count", action="store_true", help="do not count queries (one more run of each)")
    parser.add_argument(
        "--as-built",
        action="store_true",
        help="read the kept store at the schema it was built with (for older code), not a copy upgraded to this one's",
    )
    args = parser.parse_args()

    if args.as_built:
        store = big_store(args.n)
    else:  # this code refuses a store behind its schema: a copy, upgraded (the kept store stays as built)
        scratch = Path(tempfile.mkdtemp(prefix="korgwatch-read-bench-"))
        atexit.register(shutil.rmtree, scratch, True)
        store = scratch_copy(args.n, scratch)
    code = args.code.resolve()
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"}
    korgwatch = [sys.executable, "-m", "korgwatch.cli"]
    chosen = commands(store, args.since, not args.no_all)
    print(f"store: {store} ({args.n:,} listings); code: {code}; {args.runs} runs each, interleaved")

    bare = Series()
    subjects = {c.name: Series() for c in chosen}
    baselines = {c.name: Series() for c in chosen}
    rows: dict[str, int] = {}
    for _ in range(args.runs):
        bare.add(run([sys.executable, "-c", "pass"]))
        for command in chosen:
            done: Run = subjects[command.name].add(
                run([*korgwatch, *command.args, "--db", str(store)], cwd=code, env=env, keep=True)
            )
            if done.code != 0:
                raise SystemExit(f"{command.name}: exit {done.code}")
            rows[command.name] = done.output.count(b"\n")
            baselines[command.name].add(run([sys.executable, "-c", RAW, str(store), command.sql]))

    counted: dict[str, str] = {c.name: "-" for c in chosen}
    for command in [] if args.no_count else chosen:
        out = Path(f"/tmp/bench-read-queries-{os.getpid()}")
        run([sys.executable, "-c", COUNTER, str(out), *command.args, "--db", str(store)], cwd=code, env=env)
        counted[command.name] = out.read_text() if out.exists() else "?"
        out.unlink(missing_ok=True)

    print(f"bare `python -c pass`: wall {seconds(bare.wall())}, {bare.rss():.0f} MB")
    print(
        "command: wall min/median/max; CPU (user+system) median; peak memory; queries; output lines "
        "| raw sqlite3 baseline | ratio of median walls"
    )
    for command in chosen:
        mine, raw = subjects[command.name], baselines[command.name]
        print(
            f"{command.name:38} {seconds(mine.wall()):22} cpu {mine.cpu()[1]:.2f} s  {mine.rss():5.0f} MB  "
            f"{counted[command.name]:>2} queries  {rows[command.name]:>7} lines"
            f" | raw {seconds(raw.wall()):22} cpu {raw.cpu()[1]:.2f} s {raw.rss():4.0f} MB"
            f" | ×{mine.wall()[1] / raw.wall()[1]:.1f}"
        )
    queue = subjects[chosen[0].name].wall()[1]
    export_name = next(c.name for c in chosen if c.name.startswith("export") and "csv" in c.name)
    export = subjects[export_name].wall()[1]
    worst = max(s.rss() for s in subjects.values())
    print(
        f"targets (medians): queue {queue:.2f} s (< {TARGET_QUEUE_S} s: {verdict(queue < TARGET_QUEUE_S)}); "
        f"export {export:.2f} s for {rows[export_name] - 1:,} serials (< {TARGET_EXPORT_S} s: "
        f"{verdict(export < TARGET_EXPORT_S)}); peak memory {worst:.0f} MB (< {TARGET_RSS_MB:.0f} MB: "
        f"{verdict(worst < TARGET_RSS_MB)}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


if __name__ == "__main__":
    main()
