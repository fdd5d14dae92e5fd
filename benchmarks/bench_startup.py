"""Start-up of the read commands (issue 14, target 5: under 0.3 s) beside bare Python start-up, in the same run,
interleaved, with the top importers from `python -X importtime`.

Each command runs as a real process on a small current store (the shipped example listings), so the time is
start-up plus a trivial query: imports, the store and schema check, one page. The baseline is `python -c pass`.
The importers are the top-level imports of `korgwatch queue` by cumulative time (microseconds as
-X importtime prints them; under load every figure grows alike, the shares stay).
`--code DIR` measures another checkout (e.g. the one before this change).
Run: .venv/bin/python benchmarks/bench_startup.py
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from runs import Series, run, seconds

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 0.3
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
HEAVY = ("scrapy", "twisted", "alembic", "starlette")


def top_importers(argv: list[str], env: dict[str, str], cwd: Path, most: int = 12) -> tuple[int, list[tuple[str, int]]]:
    """Total import time (µs) and the top-level imports by cumulative time, from `-X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    top: list[tuple[str, int]] = []
    for line in done.stderr.splitlines():
        found = IMPORT_LINE.match(line)
        if found and len(found[3]) == 1:  # depth 0: imported by the program itself
            top.append((found[4], int(found[2])))
    return sum(t for _, t in top), sorted(top, key=lambda item: -item[1])[:most]


def heavy_modules(argv: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    names = {found[4].split(".")[0] for line in done.stderr.splitlines() if (found := IMPORT_LINE.match(line))}
    return sorted(names & set(HEAVY))


def small_store(folder: Path, env: dict[str, str], cwd: Path) -> Path:
    store = folder / "startup.sqlite"
    listings = REPO / "examples" / "listings.jsonl"
    subprocess.run(
        [sys.executable, "-m", "korgwatch.cli", "ingest", str(listings), "--db", str(store)],
        env=env,
        cwd=cwd,
        capture_output=True,
        check=True,
    )
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--code", type=Path, default=REPO, help="the korgwatch checkout to run (default: this one)")
    args = parser.parse_args()
    code = args.code.resolve()
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"}

    with tempfile.TemporaryDirectory() as folder:
        store = str(small_store(Path(folder), env, code))
        korgwatch = ["-m", "korgwatch.cli"]
        subjects = {
            "korgwatch queue --help": [*korgwatch, "queue", "--help"],
            "korgwatch queue": [*korgwatch, "queue", "--db", store],
            "korgwatch history 730144": [*korgwatch, "history", "730144", "--db", store],
            "korgwatch db upgrade (current)": [*korgwatch, "db", "upgrade", "--db", store],
        }
        bare = Series()
        series = {name: Series() for name in subjects}
        for _ in range(args.runs):
            bare.add(run([sys.executable, "-c", "pass"]))
            for name, argv in subjects.items():
                series[name].add(run([sys.executable, *argv], env=env, cwd=code))
        total, top = top_importers(subjects["korgwatch queue"], env, code)
        heavy = heavy_modules(subjects["korgwatch queue"], env, code)

    print(f"code: {code}; {args.runs} runs each, interleaved; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'bare `python -c pass`':32} wall {seconds(bare.wall()):22} cpu {seconds(bare.cpu())}")
    for name, one in series.items():
        print(
            f"{name:32} wall {seconds(one.wall()):22} cpu {seconds(one.cpu()):22} "
            f"start-up over bare Python (median wall) {one.wall()[1] - bare.wall()[1]:.2f} s"
        )
    print(f"`korgwatch queue` imports: {total / 1e6:.2f} s in all (-X importtime); heavy: {', '.join(heavy) or 'none'}")
    for name, micros in top:
        print(f"  {name:40} {micros / 1000:8.1f} ms  {micros / total:6.1%}")
    queue = series["korgwatch queue"].wall()[1]
    print(f"target: `korgwatch queue` start-up {queue:.2f} s median wall (< {TARGET_S} s: "
          f"{'met' if queue < TARGET_S else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
