"""The analyser against real text: the corpus of tests/fixtures/real/, expectations written by reading it.

A snippet agrees when the analyser reports its expected instruments exactly (models, serials, flag codes).
The snippets marked `known` are those it cannot get right yet, each with its reason; they count against the
figure. `benchmarks/corpus_agreement.py` prints the agreement by category.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.corpus_agreement import CorpusError, Outcome, load_corpus, run
from pipeline.rules import Rules

AGREEMENT_FLOOR = 0.97
MINIMUM_SNIPPETS = 200


@pytest.fixture(scope="module")
def outcomes(rules: Rules) -> list[Outcome]:
    return run(load_corpus(), rules)


def test_the_corpus_is_large_enough_and_every_line_is_complete(outcomes: list[Outcome]) -> None:
    assert len(outcomes) >= MINIMUM_SNIPPETS
    for outcome in outcomes:
        snippet = outcome.snippet
        assert snippet.title or snippet.body, snippet.id
        for _model, serial, flags in snippet.expected:
            assert flags == sorted(flags), snippet.id
            assert serial is None or serial == serial.strip(), snippet.id


def test_the_analyser_agrees_with_the_readers(outcomes: list[Outcome]) -> None:
    disagreements = [o for o in outcomes if not o.agrees]
    agreement = 1 - len(disagreements) / len(outcomes)
    report = "\n".join(o.describe() for o in disagreements)
    print(f"agreement {agreement:.1%} over {len(outcomes)} snippets; disagreements:\n{report}")
    assert agreement >= AGREEMENT_FLOOR, f"agreement {agreement:.1%} < {AGREEMENT_FLOOR:.0%}:\n{report}"


def test_every_known_miss_is_still_missed_and_says_why(outcomes: list[Outcome]) -> None:
    """A `known` mark is a debt: once the analyser gets the snippet right, the mark must go."""
    for outcome in outcomes:
        known = outcome.snippet.known
        if known is not None:
            assert known.strip(), f"{outcome.snippet.id}: a known miss needs its reason"
            assert not outcome.agrees, f"{outcome.snippet.id} is right now: remove its `known` mark"


def test_a_bad_corpus_line_names_its_file_and_line(tmp_path: Path) -> None:
    good = ('{"id": "x-1", "source_url": "u", "language": "en", "kind": "forum", "title": "Korg MS-20", "body": "",'
            ' "expect": {"instruments": [], "excluded": []}, "why": null, "known": null}')
    (tmp_path / "a.jsonl").write_text(good + "\n" + '{"id": "x-2", "title": "no expect"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"a\.jsonl:2: missing"):
        load_corpus(tmp_path)
    (tmp_path / "a.jsonl").write_text(good + "\n" + good + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"a\.jsonl:2: id x-1 already used at a\.jsonl:1"):
        load_corpus(tmp_path)


def test_the_same_text_twice_is_refused(tmp_path: Path) -> None:
    line = ('{{"id": "{id}", "source_url": "u", "language": "en", "kind": "forum", "title": "Korg MS-20",'
            ' "body": "", "expect": {{"instruments": [], "excluded": []}}, "why": null, "known": null}}')
    (tmp_path / "a.jsonl").write_text(line.format(id="x-1") + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(line.format(id="y-1") + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"b\.jsonl:1: the same title and body as a\.jsonl:1"):
        load_corpus(tmp_path)
