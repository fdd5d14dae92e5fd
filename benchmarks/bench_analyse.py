"""Analyser throughput beside a bare baseline (NFKC plus one compiled serial regex) over the same texts.

Run: .venv/bin/python benchmarks/bench_analyse.py [--n 100000]
The analyser should reach at least half the baseline's rate. It says whether the mypyc-compiled analyser
(what `pip install` builds) or the sources ran: edited sources always run from source, at about half the speed.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import time
import unicodedata
from pathlib import Path

import pipeline
from pipeline.analyse import analyser_for
from pipeline.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent
# (title name, block prefixes of the model's own serials)
MODELS = [
    ("MS-20", ["14", "439"]),
    ("MS-10", ["13"]),
    ("Polysix", ["38", "39", "46"]),
    ("Mono/Poly", ["37", "47"]),
    ("SQ-10", ["15"]),
    ("MS-50", ["19"]),
    ("Poly-61", ["7"]),
    ("Delta", ["28"]),
    ("KR-55", ["25", "36"]),
    ("Trident MkII", ["41"]),
]
WRONG_SHARE = 0.15  # about the share of wrong title serials the register keeper notes
CUES = ["SN", "s/n", "S/N:", "Serial #", "serial number", "Seriennummer", "製造番号", "#"]
FILLER = (
    "Fully serviced by a technician last year, all keys and knobs work, minor wear on the wooden side panels. "
    "Ships worldwide in a custom flight case; buyer pays shipping of $85 within the US. Price 1,899.00 USD. "
    "Call 0171 234567 for questions. Made in Japan in 1979. Smoke-free studio, no returns. "
)
JAPANESE = "動作確認済み。ノークレーム・ノーリターンでお願いします。送料無料。価格 98,000円。"


def _serial(rng: random.Random, prefixes: list[str]) -> str:
    """A serial of the model's blocks, or (WRONG_SHARE of the time) one of another block."""
    prefix = rng.choice(prefixes) if rng.random() > WRONG_SHARE else rng.choice(["73", "18", "45", "22", "8"])
    return prefix + "".join(rng.choice("0123456789") for _ in range(6 - len(prefix)))


def generate(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """n listings: a title with a model and a serial (mostly right, as in real listings) and a ~1 KB body."""
    rng = random.Random(seed)
    listings = []
    for _ in range(n):
        model, prefixes = rng.choice(MODELS)
        serial = _serial(rng, prefixes)
        title = f"Korg {model} vintage analog synth {rng.choice(CUES)} {serial}"
        if rng.random() < 0.1:
            title = f"KORG {model} アナログシンセ 製造番号{serial} 動作品"
        body_parts = [FILLER] * 5
        if rng.random() < 0.2:
            body_parts.append(JAPANESE)
        if rng.random() < 0.3:
            body_parts.insert(2, f"Serial number {serial} on the back plate. ")
        listings.append((title, "".join(body_parts)[:1100]))
    return listings


RULES = load_rules(ROOT / "config")
BASELINE_REGEX = re.compile(r"(?:s/?n|serial)\D{0,12}(\d{4,8})", re.IGNORECASE)


def baseline(listings: list[tuple[str, str]]) -> int:
    found = 0
    for title, body in listings:
        found += len(BASELINE_REGEX.findall(unicodedata.normalize("NFKC", title + "\n" + body)))
    return found


def run_analyser(listings: list[tuple[str, str]]) -> int:
    analyser = analyser_for(RULES)
    flagged = 0
    for title, body in listings:
        flagged += sum(i.flagged for i in analyser.analyse(title, body).instruments)
    return flagged


def interleaved(listings: list[tuple[str, str]], rounds: int, chunk: int = 1000) -> tuple[float, float, int, int]:
    """Both rates, timed chunk by chunk in alternating order (A B, B A, ...) so that load on a shared machine
    falls on both alike; each side's best round is kept."""
    best_base = best_analyser = float("inf")
    matches = flagged = 0
    for _ in range(rounds):
        base_time = analyser_time = 0.0
        matches = flagged = 0
        for index in range(0, len(listings), chunk):
            part = listings[index : index + chunk]
            order = (baseline, run_analyser) if (index // chunk) % 2 == 0 else (run_analyser, baseline)
            for fn in order:
                start = time.perf_counter()
                result = fn(part)
                elapsed = time.perf_counter() - start
                if fn is baseline:
                    base_time += elapsed
                    matches += result
                else:
                    analyser_time += elapsed
                    flagged += result
        best_base = min(best_base, base_time)
        best_analyser = min(best_analyser, analyser_time)
    return len(listings) / best_base, len(listings) / best_analyser, matches, flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="listings to generate (default 100000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all listings; the best is kept")
    args = parser.parse_args()
    listings = generate(args.n)
    analyser_for(RULES)  # compile the matchers outside the timing
    gc.freeze()  # the inputs stay out of every collection the timed code triggers
    base_rate, analyser_rate, matches, flagged = interleaved(listings, args.rounds)
    print(f"listings:                 {len(listings):,} (title + ~1 KB body), {args.rounds} interleaved rounds")
    print(f"analyser build:           {pipeline.BUILD} (see pipeline/_build.py)")
    print(f"baseline NFKC + 1 regex:  {base_rate:,.0f} listings/s ({matches:,} serial matches)")
    print(f"analyser:                 {analyser_rate:,.0f} listings/s ({flagged:,} instruments flagged)")
    print(f"ratio analyser/baseline:  {analyser_rate / base_rate:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
