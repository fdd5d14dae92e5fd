"""Normalisation: full-width forms, the register's non-breaking hyphens, Greek look-alikes, and the span map."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise import alias_key, normalise, normalise_with_map, original_span


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Korg MS-20", "Korg MS-20"),
        ("Korg MS‑20", "Korg MS-20"),  # U+2011, as the register writes it
        ("ＭＳ－２０ ＳＮ １４４５７１", "MS-20 SN 144571"),
        ("製造番号：１４４５７１", "製造番号:144571"),
        ("Korg\u00a0Polysix 388’831", "Korg Polysix 388'831"),
        ("KORG ∆ DL-50", "KORG Δ DL-50"),
        ("KORG ∑ KP-30", "KORG Σ KP-30"),
        ("MS\u200b-20", "MS-20"),
        ("Korg　Trident", "Korg Trident"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_ascii_text_needs_no_map() -> None:
    text = "Korg MS-20 SN 144571"
    assert normalise_with_map(text) == (text, None)


def test_span_maps_back_to_full_width_original() -> None:
    raw = "ＭＳ－２０ ＳＮ １４４５７１ 動作品"
    norm, origin = normalise_with_map(raw)
    start = norm.index("144571")
    first, last = original_span(origin, start, start + 6, len(raw))
    assert raw[first:last] == "１４４５７１"


def test_span_maps_back_across_expanding_characters() -> None:
    raw = "№ ﬁne MS-20 ＃144571"
    norm, origin = normalise_with_map(raw)
    start = norm.index("144571")
    first, last = original_span(origin, start, start + 6, len(raw))
    assert raw[first:last] == "144571"


@pytest.mark.parametrize("alias", ["MS-20", "ms 20", "MS20", "ＭＳ－２０", "Ms‑20"])
def test_alias_key_ignores_separators_and_case(alias: str) -> None:
    assert alias_key(alias) == "ms20"


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(st.text())
def test_map_has_one_origin_per_character(text: str) -> None:
    norm, origin = normalise_with_map(text)
    if origin is not None:
        assert len(origin) == len(norm)
        assert all(0 <= i < len(text) for i in origin)
        assert origin == sorted(origin)
