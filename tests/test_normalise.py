"""Normalisation: full-width forms, the register's non-breaking hyphens, Greek look-alikes, and the span map."""

from __future__ import annotations

from bisect import bisect_right

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



def _cluster_by_cluster(text: str) -> tuple[str, list[int], list[int]]:
    """The reference: every cluster (a base and its combining marks) normalised on its own, in a plain loop.

    Returns the text, each character's cluster start, and the clusters' starts. Text that needs no work (plain
    ASCII without a tab) is left as it is, as normalise_with_map leaves it.
    """
    import unicodedata

    from pipeline.normalise import _TRANSLATION

    clusters: list[tuple[int, str]] = []
    for index, char in enumerate(text):
        if clusters and unicodedata.combining(char):
            clusters[-1] = (clusters[-1][0], clusters[-1][1] + char)
        else:
            clusters.append((index, char))
    starts = [start for start, _ in clusters]
    if text.isascii() and "\t" not in text:
        return text, [starts[bisect_right(starts, i) - 1] for i in range(len(text))], starts
    parts: list[str] = []
    origin: list[int] = []
    for start, chunk in clusters:
        piece = unicodedata.normalize("NFKC", chunk).translate(_TRANSLATION)
        parts.append(piece)
        origin.extend([start] * len(piece))
    return "".join(parts), origin, starts


# Text as sellers write it, with the characters normalisation works on mixed in: full-width forms, curly quotes,
# invisible characters, combining marks, ligatures, kana, Hangul jamo (which compose across clusters).
_SELLER_ALPHABET = st.sampled_from(
    [*"Korg MS-20 SN 144571 plate:#é", "１", "４", "Ｍ", "－", "’", "‘", "\u00a0", "\u200b", "\u00ad", "\u0301",
     "\u0308", "ﬁ", "№", "∆", "ｶ", "ﾞ", "製", "造", "番", "号", "：", "\t", "e", "\u3000", "가", "\u1100", "\u1161"]
)


def _is_nfkc(text: str) -> bool:
    import unicodedata

    return unicodedata.is_normalized("NFKC", text)


@given(st.lists(_SELLER_ALPHABET, max_size=120).map("".join))
def test_the_map_is_what_working_cluster_by_cluster_gives(text: str) -> None:
    norm, origin = normalise_with_map(text)
    expected, expected_origin, starts = _cluster_by_cluster(text)
    if not _is_nfkc(expected):  # a sequence that composes across clusters: normalised whole, the map approximate
        assert _is_nfkc(norm)
        return
    assert norm == expected
    # Each character maps into the cluster it came from: to the cluster's start, or to itself where the cluster
    # came through unchanged.
    mapped = origin if origin is not None else list(range(len(text)))
    assert [starts[bisect_right(starts, i) - 1] for i in mapped] == expected_origin


@given(st.text())
def test_any_text_is_normalised_as_cluster_by_cluster(text: str) -> None:
    expected, _, _ = _cluster_by_cluster(text)
    if _is_nfkc(expected):
        assert normalise(text) == expected


def test_the_real_corpus_is_normalised_as_cluster_by_cluster() -> None:
    import json
    from pathlib import Path

    texts = [
        record[key]
        for path in sorted((Path(__file__).parent / "fixtures" / "real").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for record in [json.loads(line)]
        for key in ("title", "body")
        if record[key]
    ]
    assert len(texts) > 300
    for text in texts:
        norm, origin = normalise_with_map(text)
        expected, expected_origin, starts = _cluster_by_cluster(text)
        assert norm == expected, text
        mapped = origin if origin is not None else list(range(len(text)))
        assert [starts[bisect_right(starts, i) - 1] for i in mapped] == expected_origin, text

