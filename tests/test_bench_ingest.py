"""The ingest benchmark's raw baseline writes the rows korgwatch writes (its ratio means nothing otherwise).

No timing is asserted here: benchmarks/bench_ingest.py prints the rates; this only runs it small.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_raw_baseline_writes_the_same_rows_as_korgwatch(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_ingest.py",
            "--n",
            "600",
            "--batch",
            "200",
            "--runs",
            "1",
            "--dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.splitlines()
    rows = next(line for line in lines if line.strip().startswith("rows:"))
    counts = {
        name: int(number.replace(",", "")) for number, name in (part.split() for part in rows.split(":")[1].split(","))
    }
    assert counts["listings"] == 600
    assert counts["instruments"] > 0 and counts["appearances"] >= counts["instruments"] and counts["flags"] > 0
    assert not any("korgwatch wrote" in line for line in lines), result.stdout  # printed only on a mismatch
    assert any("of the 4-table raw write (the same rows)" in line for line in lines)
