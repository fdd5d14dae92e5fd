"""Analyser throughput beside the fastest bare baseline over the same varied texts, interleaved.

The baseline is what any serial scraper must do at least: NFKC, lower-case once, one compiled serial regex
(case-sensitive over the lower-cased text, as the analyser matches: an IGNORECASE regex is about twice as slow
and would flatter the analyser). The benchmark first checks that this baseline finds the same matches as the
IGNORECASE form. Listings come from benchmarks/listing_text.py: bodies composed of real corpus sentences and
sellers' stock phrases, a line to 4 KB long; and the same titles without a body, as eBay's summaries come.

Each side is timed chunk by chunk in alternating order (A B, B A, ...), in process CPU time, so load on a shared
machine falls on both alike and other processes' turns are not counted; each round gives one rate per side and
one ratio, printed as min / median / max over the rounds.

Run: .venv/bin/python benchmarks/bench_analyse.py [--n 100000] [--rounds 5]
The analyser should reach at least half the baseline's rate, with bodies and titles only. It says whether the
mypyc-compiled analyser (what `pip install` builds) or the sources ran: edited sources always run from source.
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pipeline  # noqa: E402
from benchmarks.listing_text import Listing, generate  # noqa: E402
from pipeline.analyse import analyser_for  # noqa: E402
from pipeline.rules import load_rules  # noqa: E402

TARGET = 0.5
RULES = load_rules(ROOT / "config")
# The serial regex in lower case with its literal first: the regex engine skips ahead to each "s".
BASELINE_REGEX = re.compile(r"s(?:/?n|erial)\D{0,12}(\d{4,8})")
# The same regex as the old baseline wrote it, kept only to check that the fast form finds the same matches.
IGNORECASE_REGEX = re.compile(r"(?:s/?n|serial)\D{0,12}(\d{4,8})", re.IGNORECASE)


def baseline(listings: Sequence[Listing]) -> int:
    """Serial matches found by NFKC, one lower-casing and one regex over title and body."""
    normalize, findall = unicodedata.normalize, BASELINE_REGEX.findall
    found = 0
    for listing in listings:
        found += len(findall(normalize("NFKC", listing.title + "\n" + listing.body).lower()))
    return found


def run_analyser(listings: Sequence[Listing]) -> int:
    """Instruments the analyser flags over the listings."""
    analyse = analyser_for(RULES).analyse
    flagged = 0
    for listing in listings:
        for instrument in analyse(listing.title, listing.body).instruments:
            flagged += instrument.flagged
    return flagged


def baseline_differences(listings: Sequence[Listing]) -> list[int]:
    """Indexes of the listings where the baseline finds other serials than the IGNORECASE regex would."""
    differ = []
    for index, listing in enumerate(listings):
        text = unicodedata.normalize("NFKC", listing.title + "\n" + listing.body)
        if BASELINE_REGEX.findall(text.lower()) != IGNORECASE_REGEX.findall(text):
            differ.append(index)
    return differ


@dataclass(frozen=True)
class Rounds:
    """Per round: each side's rate (listings per CPU second) and their ratio; the counts each side returned."""

    baseline: list[float]
    analyser: list[float]
    ratio: list[float]
    matches: int
    flagged: int


def interleaved(listings: Sequence[Listing], rounds: int, chunk: int = 1000,
                clock: Callable[[], float] = time.process_time) -> Rounds:
    """Both sides over the same listings, chunk by chunk in alternating order, `rounds` times."""
    base_rates: list[float] = []
    analyser_rates: list[float] = []
    matches = flagged = 0
    for _ in range(rounds):
        base_time = analyser_time = 0.0
        matches = flagged = 0
        for index in range(0, len(listings), chunk):
            part = listings[index : index + chunk]
            order = (baseline, run_analyser) if (index // chunk) % 2 == 0 else (run_analyser, baseline)
            for fn in order:
                start = clock()
                result = fn(part)
                elapsed = clock() - start
                if fn is baseline:
                    base_time += elapsed
                    matches += result
                else:
                    analyser_time += elapsed
                    flagged += result
        base_rates.append(len(listings) / base_time)
        analyser_rates.append(len(listings) / analyser_time)
    ratios = [a / b for a, b in zip(analyser_rates, base_rates, strict=True)]
    return Rounds(base_rates, analyser_rates, ratios, matches, flagged)


def spread(values: list[float], fmt: str = ",.0f") -> str:
    """min / median / max, as the benchmarks print them."""
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def describe(listings: Sequence[Listing]) -> str:
    bodies = sorted(len(listing.body) for listing in listings)
    if not bodies[-1]:
        return "titles only"
    return (f"title + body of varied text (body {bodies[0]:,} / {statistics.median(bodies):,.0f} / "
            f"{bodies[-1]:,} characters min / median / max)")


def report(label: str, listings: Sequence[Listing], rounds: Rounds) -> None:
    print(f"{label}: {len(listings):,} listings, {describe(listings)}")
    print(f"  baseline NFKC + lower + 1 regex:  {spread(rounds.baseline)} listings/s "
          f"(min / median / max; {rounds.matches:,} serial matches)")
    print(f"  analyser:                         {spread(rounds.analyser)} listings/s "
          f"({rounds.flagged:,} instruments flagged)")
    print(f"  ratio analyser/baseline:          {spread(rounds.ratio, '.2f')} (target >= {TARGET:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="listings to generate (default 100000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over all listings (default 5)")
    args = parser.parse_args()
    with_body = generate(args.n)
    titles_only = generate(args.n, with_body=False)
    differ = baseline_differences(with_body)
    if differ:
        first = with_body[differ[0]]
        raise SystemExit(f"the lower-cased baseline regex differs from the IGNORECASE one on {len(differ)} listings, "
                         f"first: {first.title!r}")
    analyser_for(RULES)  # compile the matchers outside the timing
    gc.freeze()  # the inputs stay out of every collection the timed code triggers
    print(f"analyser build: {pipeline.BUILD} (see pipeline/_build.py); {args.rounds} interleaved rounds, CPU time")
    print("baseline check: the lower-cased regex finds the same serials as the IGNORECASE one on every listing")
    report("with body", with_body, interleaved(with_body, args.rounds))
    report("titles only", titles_only, interleaved(titles_only, args.rounds))


if __name__ == "__main__":
    main()
