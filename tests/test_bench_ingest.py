"""The ingest benchmarks run, and their raw baselines write the rows korgwatch writes (a ratio means nothing
otherwise).

No timing is asserted here: benchmarks/bench_ingest*.py print the rates; this only runs them small.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(*args: str) -> list[str]:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    return result.stdout.splitlines()


def test_the_raw_baseline_writes_the_same_rows_as_korgwatch(tmp_path: Path) -> None:
    lines = run_benchmark(
        "benchmarks/bench_ingest.py", "--n", "600", "--batch", "200", "--runs", "2", "--dir", str(tmp_path)
    )
    rows = next(line for line in lines if line.strip().startswith("rows:"))
    counts = {
        name: int(number.replace(",", "")) for number, name in (part.split() for part in rows.split(":")[1].split(","))
    }
    assert counts["listings"] == 600
    assert counts["instruments"] > 0 and counts["appearances"] >= counts["instruments"] and counts["flags"] > 0
    assert not any("korgwatch wrote" in line for line in lines), lines  # printed only on a mismatch
    assert any("of the 4-table raw write (the same rows)" in line for line in lines)
    # every measurement reports its spread over the interleaved runs
    assert sum("(min " in line and ", max " in line for line in lines) == 6


def test_the_growth_run_prints_every_slice_and_the_last_over_first_ratio(tmp_path: Path) -> None:
    lines = run_benchmark(
        "benchmarks/bench_ingest.py",
        *("--n", "0", "--grow", "900", "--step", "300", "--batch", "100", "--dir", str(tmp_path)),
    )
    slices = [line.split() for line in lines if line.strip() and line.split()[0].replace(",", "").isdigit()]
    assert [int(row[0].replace(",", "")) for row in slices] == [300, 600, 900]
    assert all(float(row[1].replace(",", "")) > 0 and float(row[2].replace(",", "")) > 0 for row in slices)
    assert any(line.startswith("last slice / first slice: korgwatch") for line in lines)


@pytest.mark.postgres
def test_the_postgres_benchmark_runs_beside_executemany_and_copy(postgres_server_url: str) -> None:
    from sqlalchemy.engine import make_url

    database = f"kw_bench_test_{uuid.uuid4().hex[:8]}"  # the benchmark creates it, and drops it at the end
    url = make_url(postgres_server_url).set(database=database).render_as_string(hide_password=False)
    lines = run_benchmark(
        "benchmarks/bench_ingest_postgres.py", *("--n", "600", "--step", "300", "--batch", "100", "--db", url)
    )
    assert any("COPY" in line and "korgwatch / raw" in line for line in lines), lines
    assert any("korgwatch / 4-table raw" in line for line in lines), lines
    classified = next(line for line in lines if line.startswith("classified:"))
    assert "600 listings new" in classified and "0 errors" in classified
