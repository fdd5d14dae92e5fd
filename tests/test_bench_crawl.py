"""The crawl benchmark's fixture raises flags, so its full crawl measures the flag path too.

No timing is asserted here: benchmarks/bench_crawl.py prints the rates; this checks its fixture and runs it small.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.bench_crawl import with_wrong_serials
from crawler.demo.site import generate_listings
from pipeline.analyse import analyse_listing
from pipeline.rules import Rules

ROOT = Path(__file__).resolve().parents[1]


def test_the_wrong_serials_are_flagged_wherever_the_listing_writes_them(rules: Rules) -> None:
    listings = generate_listings("jsonld", 400)
    original = [dict(listing) for listing in listings]
    changed = with_wrong_serials(listings)
    assert 30 <= changed <= 90  # about 15 % of 400
    differing = [(old, new) for old, new in zip(original, listings, strict=True) if old["serial"] != new["serial"]]
    assert len(differing) == changed
    for old, new in differing:
        assert old["serial"] not in new["title"] + new["body"]
        assert new["serial"] in new["title"] + new["body"]
        (instrument,) = analyse_listing(new["title"], new["body"], rules).instruments
        assert instrument.serial == new["serial"] and instrument.flagged, new["title"]


def test_the_benchmark_runs_and_reports_cpu_time_and_flags() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_crawl.py", "-n", "120", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = result.stdout.splitlines()
    served = next(line for line in lines if line.startswith("pages served:"))
    wrong = int(served.split(";")[1].split()[0])
    stored = next(line for line in lines if line.startswith("full crawl stored"))
    assert stored.split()[3] == "120" and int(stored.split()[6]) == wrong > 0, result.stdout
    assert any(line.startswith("full crawl (spider") and len(line.split("/")) >= 5 for line in lines), result.stdout
    assert any(line.startswith("ratio full/bare, CPU rate:") for line in lines), result.stdout
