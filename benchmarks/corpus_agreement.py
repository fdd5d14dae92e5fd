"""How far the analyser agrees with the real-text corpus (tests/fixtures/real/), overall and by category.

The corpus holds real snippets with expectations written by reading them (see its README). A snippet agrees
when the analyser reports exactly the expected instruments: models, serials and flag codes, in order. The
categories say where a disagreement lies:
- serial found: of the expected serials, how many the analyser reports on the right model;
- model: the expected list of models matches;
- flags: of the snippets whose models and serials agree, how many also agree on flag codes;
- no false serial: of the expected "no serial" instruments, how many the analyser leaves without one.

Run: .venv/bin/python benchmarks/corpus_agreement.py [--show-disagreements]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.analyse import analyse_listing  # noqa: E402
from pipeline.rules import Rules, load_rules  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "real"
REQUIRED_KEYS = ("id", "source_url", "language", "kind", "title", "body", "expect", "why", "known")

Summary = list[tuple[str, str | None, list[str]]]


class CorpusError(ValueError):
    """A corpus line that cannot be read, naming its file and line."""


@dataclass(frozen=True)
class Snippet:
    id: str
    file: str
    line: int
    language: str
    kind: str
    title: str
    body: str
    expected: Summary
    excluded: tuple[str, ...]
    known: str | None


@dataclass
class Outcome:
    snippet: Snippet
    got: Summary
    got_excluded: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.got == self.snippet.expected

    def describe(self) -> str:
        s = self.snippet
        known = f"  [known: {s.known}]" if s.known else ""
        return (
            f"{s.id} ({s.file}:{s.line}){known}\n  title: {s.title[:160]!r}\n  body:  {s.body[:160]!r}\n"
            f"  expected {s.expected}\n  got      {self.got}  excluded {list(self.got_excluded)}"
        )


def _summary(instruments: list[dict[str, Any]]) -> Summary:
    return [(i["model"], i["serial"], sorted(i["flags"])) for i in instruments]


def load_corpus(directory: Path = CORPUS) -> list[Snippet]:
    """Every snippet of every *.jsonl file, checked; a bad line raises CorpusError naming file and line."""
    snippets: list[Snippet] = []
    seen: dict[str, str] = {}
    seen_texts: dict[tuple[str, str], str] = {}
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                data = json.loads(line)
                missing = [k for k in REQUIRED_KEYS if k not in data]
                if missing:
                    raise CorpusError(f"{where}: missing {', '.join(missing)}")
                expect = data["expect"]
                snippet = Snippet(
                    data["id"],
                    path.name,
                    number,
                    data["language"],
                    data["kind"],
                    data["title"] or "",
                    data["body"] or "",
                    _summary(expect["instruments"]),
                    tuple(expect.get("excluded") or ()),
                    data["known"],
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CorpusError(f"{where}: {exc}") from exc
            if snippet.id in seen:
                raise CorpusError(f"{where}: id {snippet.id} already used at {seen[snippet.id]}")
            text = (snippet.title, snippet.body)
            if text in seen_texts:
                raise CorpusError(f"{where}: the same title and body as {seen_texts[text]}")
            seen[snippet.id] = seen_texts[text] = where
            snippets.append(snippet)
    return snippets


def run(snippets: list[Snippet], rules: Rules) -> list[Outcome]:
    outcomes = []
    for snippet in snippets:
        analysis = analyse_listing(snippet.title, snippet.body, rules)
        got = [(i.model, i.serial, sorted(f.code for f in i.flags)) for i in analysis.instruments]
        outcomes.append(Outcome(snippet, got, analysis.excluded))
    return outcomes


@dataclass
class Tally:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1

    def __str__(self) -> str:
        share = self.right / self.total if self.total else 1.0
        return f"{self.right:>4} / {self.total:<4} {share:6.1%}"


@dataclass
class Categories:
    whole: Tally = field(default_factory=Tally)
    serial_found: Tally = field(default_factory=Tally)
    model: Tally = field(default_factory=Tally)
    flags: Tally = field(default_factory=Tally)
    no_false_serial: Tally = field(default_factory=Tally)
    by_file: dict[str, Tally] = field(default_factory=dict)
    by_language: dict[str, Tally] = field(default_factory=dict)


def categorise(outcomes: list[Outcome]) -> Categories:
    cats = Categories()
    for outcome in outcomes:
        expected, got = outcome.snippet.expected, outcome.got
        cats.whole.add(outcome.agrees)
        cats.by_file.setdefault(outcome.snippet.file, Tally()).add(outcome.agrees)
        cats.by_language.setdefault(outcome.snippet.language, Tally()).add(outcome.agrees)
        cats.model.add([m for m, _, _ in expected] == [m for m, _, _ in got])
        got_serials = Counter((m, s) for m, s, _ in got if s is not None)
        got_models_without = Counter(m for m, s, _ in got if s is None)
        for model, serial, _ in expected:
            if serial is not None:
                cats.serial_found.add(got_serials[(model, serial)] > 0)
            else:
                cats.no_false_serial.add(got_models_without[model] > 0 or model not in {m for m, _, _ in got})
        if [(m, s) for m, s, _ in expected] == [(m, s) for m, s, _ in got]:
            cats.flags.add(expected == got)
    return cats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-disagreements", action="store_true", help="print every disagreement")
    args = parser.parse_args()
    try:
        snippets = load_corpus()
    except CorpusError as exc:
        print(f"corpus: {exc}", file=sys.stderr)
        return 2
    outcomes = run(snippets, load_rules(ROOT / "config"))
    cats = categorise(outcomes)
    print(f"snippets: {len(snippets)}; known (cannot be right yet): {sum(1 for s in snippets if s.known)}")
    print(f"whole listing right:   {cats.whole}")
    print(f"serial found:          {cats.serial_found}")
    print(f"model(s) right:        {cats.model}")
    print(f"flags right:           {cats.flags}   (where models and serials agree)")
    print(f"no false serial:       {cats.no_false_serial}")
    for name, tallies in (("file", cats.by_file), ("language", cats.by_language)):
        for key, tally in sorted(tallies.items()):
            print(f"  by {name} {key:<22} {tally}")
    if args.show_disagreements:
        for outcome in outcomes:
            if not outcome.agrees:
                print(outcome.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
