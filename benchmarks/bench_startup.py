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
    parser.add_argument("--before", type=Path, help="another checkout to run beside it, interleaved (before/after)")
    args = parser.parse_args()
    checkouts = {"": args.code.resolve()}
    if args.before:
        checkouts = {"before: ": args.before.resolve(), "after: ": args.code.resolve()}
    envs = {label: {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"} for label, code in checkouts.items()}

    with tempfile.TemporaryDirectory() as folder:
        last = list(checkouts)[-1]
        store = str(small_store(Path(folder), envs[last], checkouts[last]))
        korgwatch = ["-m", "korgwatch.cli"]
        commands = {
            "korgwatch queue --help": [*korgwatch, "queue", "--help"],
            "korgwatch queue": [*korgwatch, "queue", "--db", store],
            "korgwatch history 730144": [*korgwatch, "history", "730144", "--db", store],
            "korgwatch db upgrade (current)": [*korgwatch, "db", "upgrade", "--db", store],
        }
        bare = Series()
        series = {(label, name): Series() for name in commands for label in checkouts}
        for _ in range(args.runs):
            bare.add(run([sys.executable, "-c", "pass"]))
            for name, argv in commands.items():
                for label, code in checkouts.items():
                    series[label, name].add(run([sys.executable, *argv], env=envs[label], cwd=code))
        importers = {
            label: (*top_importers(commands["korgwatch queue"], envs[label], code),
                    heavy_modules(commands["korgwatch queue"], envs[label], code))
            for label, code in checkouts.items()
        }  # fmt: skip

    print(f"{', '.join(f'{label}{code}' for label, code in checkouts.items())}; {args.runs} runs each, interleaved; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'bare `python -c pass`':40} wall {seconds(bare.wall()):22} cpu {seconds(bare.cpu())}")
    for (label, name), one in series.items():
        print(
            f"{label + name:40} wall {seconds(one.wall()):22} cpu {seconds(one.cpu()):22} "
            f"over bare Python (median wall) {one.wall()[1] - bare.wall()[1]:.2f} s"
        )
    for label, (total, top, heavy) in importers.items():
        print(f"{label}`korgwatch queue` imports {total / 1e6:.2f} s in all (-X importtime); "
              f"heavy: {', '.join(heavy) or 'none'}")  # fmt: skip
        for name, micros in top:
            print(f"  {name:40} {micros / 1000:8.1f} ms  {micros / total:6.1%}")
    queue = series[last, "korgwatch queue"].wall()[1]
    print(f"target: `korgwatch queue` start-up {queue:.2f} s median wall (< {TARGET_S} s: "
          f"{'met' if queue < TARGET_S else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
