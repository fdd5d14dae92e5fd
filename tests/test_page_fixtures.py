"""Every fixture folder walked by one parametrised test: each input beside its expected page or record."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.pages.testing import FixtureCase, assert_case, load_cases

FIXTURES = Path(__file__).parent / "fixtures"
SOURCES = ("ebay", "jsonld", "matrixsynth", "reverb", "yahoo_auctions")
CASES = [case for source in SOURCES for case in load_cases(FIXTURES, source)]


@pytest.mark.parametrize("source", SOURCES)
def test_every_input_has_an_expected_file(source: str) -> None:
    inputs = {p.name for p in (FIXTURES / source).iterdir() if not p.name.endswith(".expected.json")}
    assert inputs
    assert inputs == {case.name for case in CASES if case.source == source}


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.source}/{case.name}")
def test_fixture(case: FixtureCase) -> None:
    assert_case(case)
