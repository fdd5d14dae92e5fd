"""The million-listing benchmarks (review pages, read commands) run end to end on a small kept store.

No timing is asserted: the scripts print the figures. This checks that they build and keep their store, upgrade a
copy to the current schema, and report every page and command beside its baseline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("queue, first page", "queue, deep page", "listing", "model (MS-20)", "decision (POST confirm)")


def run(script: str, *args: str, bench_dir: Path) -> str:
    env = {**os.environ, "KORGWATCH_BENCH_DIR": str(bench_dir)}
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_review_pages_and_read_commands_share_one_kept_store(tmp_path: Path) -> None:
    pages = run("bench_review_pages.py", "--n", "3000", "--requests", "3", bench_dir=tmp_path)
    for page in PAGES:
        line = next(line for line in pages.splitlines() if line.startswith(page))
        assert "raw sqlite3" in line, pages
    assert "slowest p95:" in pages
    kept = tmp_path / "store-3000.sqlite"
    assert kept.is_file() and not list(tmp_path.glob("*.building"))

    reads = run("bench_read_commands.py", "--n", "3000", "--runs", "1", bench_dir=tmp_path)
    assert "exit 2" not in reads, reads  # the kept store is behind the schema: the benchmark reads an upgraded copy
    for command in ("queue", "export", "history"):
        assert command in reads, reads
