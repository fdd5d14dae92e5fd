"""Matrixsynth feed extractors on the project's fixture files (Atom, GData JSON, RSS), plus the edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.pages import matrixsynth

FIXTURES = Path(__file__).parent / "fixtures"
DIR = FIXTURES / "matrixsynth"


def test_first_page_has_next_params_and_total() -> None:
    result = matrixsynth.parse_atom_feed((DIR / "page1.atom.xml").read_bytes())
    assert result.next_params == {"start-index": "4", "max-results": "3"}
    assert result.total == 5
    assert [r.external_id for r in result.records] == [
        "5550000000000000101",
        "5550000000000000102",
        "5550000000000000103",
    ]


def test_last_page_has_no_next() -> None:
    result = matrixsynth.parse_atom_feed((DIR / "page2_last.atom.xml").read_text(encoding="utf-8"))
    assert result.next_params is None
    assert len(result.records) == 2


def test_empty_feed() -> None:
    result = matrixsynth.parse_atom_feed((DIR / "empty.atom.xml").read_bytes())
    assert result.records == () and result.total == 0 and result.next_params is None and result.errors == ()


def test_truncated_feed_keeps_the_entries_before_the_cut() -> None:
    result = matrixsynth.parse_atom_feed((DIR / "truncated.atom.xml").read_bytes())
    assert [r.external_id for r in result.records] == ["5550000000000000101", "5550000000000000102"]
    assert result.errors[0].startswith("feed: XML syntax error")
    assert "post-5550000000000000103" in result.errors[1]


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_cut_anywhere_never_raises(fraction: float) -> None:
    data = (DIR / "page1.atom.xml").read_bytes()
    result = matrixsynth.parse_atom_feed(data[: int(len(data) * fraction)])
    assert result.errors, "a cut feed must say so"
    assert all(r.title and r.url for r in result.records)


def test_malformed_entries_name_index_and_id() -> None:
    result = matrixsynth.parse_atom_feed((DIR / "malformed_entries.atom.xml").read_bytes())
    assert [r.external_id for r in result.records] == ["5550000000000000101"]
    assert result.errors[0].startswith("entry 2 (tag:blogger.com,1999:blog-1700000000000000001.post-")
    assert result.errors[1].endswith("no title")


def test_summary_feed_and_opensearch_11_namespace() -> None:
    result = matrixsynth.parse_atom_feed((DIR / "summary_opensearch11.atom.xml").read_bytes())
    assert result.total == 27
    assert "Serial No. 128834" in result.records[0].body
    assert result.records[0].images == (
        "https://blogger.googleusercontent.com/img/b/R29vZ2xl/AVvXsEh0000eeee/s72-c/ms10.jpg",
    )


def test_json_and_atom_agree_on_identity() -> None:
    atom = matrixsynth.parse_atom_feed((DIR / "page1.atom.xml").read_bytes())
    gdata = matrixsynth.parse_json_feed((DIR / "page1.json").read_bytes())
    key = [(r.external_id, r.url, r.title, r.posted_at) for r in atom.records]
    assert key == [(r.external_id, r.url, r.title, r.posted_at) for r in gdata.records]
    assert gdata.next_params == {"alt": "json", "start-index": "4", "max-results": "3"}


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"feed": 3}', "<feed>", "[" * 100_000])
def test_unreadable_json_is_an_error_not_an_exception(text: str) -> None:
    result = matrixsynth.parse_json_feed(text)
    assert result.records == () and result.errors


@pytest.mark.parametrize("text", [b"", b"garbage", b"<html><body>503</body></html>"])
def test_unreadable_xml_is_an_error_not_an_exception(text: bytes) -> None:
    result = matrixsynth.parse_atom_feed(text)
    assert result.records == () and result.errors
