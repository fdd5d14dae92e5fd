"""The analyser benchmark compares like with like: its baseline finds what the IGNORECASE regex finds, and its
listings are varied text, not one paragraph repeated.

No timing is asserted here: benchmarks/bench_analyse.py prints the rates; this checks its inputs and runs it small.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.bench_analyse import baseline, baseline_differences
from benchmarks.listing_text import Listing, corpus_sentences, generate

ROOT = Path(__file__).resolve().parents[1]


def test_the_lower_cased_baseline_finds_what_the_ignorecase_regex_finds() -> None:
    listings = generate(3000)
    assert baseline_differences(listings) == []
    assert baseline(listings) > 500  # it does find serials: the check is not over text without any
    corpus = [Listing(s, "") for sentences in corpus_sentences().values() for s in sentences]
    corpus += [Listing("Korg MS-20 S/N 144571", "SERIAL NUMBER: 145201; Sn 730144; ＳＮ １４４５７１ İstanbul")]
    assert baseline_differences(corpus) == []


def test_the_bodies_are_varied_in_text_length_and_language() -> None:
    listings = generate(2000)
    bodies = [listing.body for listing in listings]
    assert len(set(bodies)) > 0.95 * len(bodies)
    lengths = sorted(len(body) for body in bodies)
    assert lengths[0] < 200 and lengths[-1] > 3000 and 300 < statistics.median(lengths) < 1500
    assert 0.2 < sum(not body.isascii() for body in bodies) / len(bodies) < 0.9
    assert len({listing.title for listing in listings}) > 0.5 * len(listings)


def test_titles_only_listings_have_the_same_titles_and_no_body() -> None:
    with_body, titles_only = generate(200), generate(200, with_body=False)
    assert [listing.title for listing in titles_only] == [listing.title for listing in with_body]
    assert all(listing.body == "" for listing in titles_only)


def test_the_benchmark_reports_both_kinds_of_listing() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_analyse.py", "--n", "300", "--rounds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert any(line.startswith("with body: 300 listings") for line in lines), result.stdout
    assert any(line.startswith("titles only: 300 listings") for line in lines), result.stdout
    ratios = [line for line in lines if "ratio analyser/baseline:" in line]
    assert len(ratios) == 2 and all(len(line.split("/")) >= 4 for line in ratios), result.stdout
