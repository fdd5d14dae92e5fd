"""Text normalisation that keeps a map back to the original, so spans found in clean text highlight the raw one.

Sellers write full-width digits (１４４５７１), the register writes non-breaking hyphens (MS‑20), and Greek
model letters arrive as look-alike maths symbols (∆ for Δ). Matching runs on the normalised text.
"""

from __future__ import annotations

import re
import unicodedata

# Applied after NFKC: dashes to "-", odd spaces to " ", quotes used as digit-group separators to "'",
# maths look-alikes to the Greek capitals Korg printed, invisible characters dropped.
_TRANSLATION = {
    **{ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"},
    **{ord(c): " " for c in "\u00a0\u2007\u2009\u200a\u202f\u205f\u3000\t"},
    **{ord(c): "'" for c in "\u2018\u2019\u2032\u00b4\u0060"},
    **{ord(c): "" for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"},
    ord("\u2206"): "Δ",  # INCREMENT
    ord("\u2211"): "Σ",  # N-ARY SUMMATION
    ord("\u039b"): "Λ",
}
# The characters the translation replaces, each with its replacement. `str.translate` looks every character of the
# text up in the table, and a regex class is read character by character: both take tens of microseconds per
# kilobyte of text that is not ASCII. Looking for each of these few characters (`in`, at memory speed) and
# replacing only those present takes one or two.
_REPLACEMENTS = tuple((chr(c), to) for c, to in _TRANSLATION.items() if chr(c) != to)
_DELETED = tuple(chr(c) for c, to in _TRANSLATION.items() if to == "")
_SMALL_PIECE = 16  # a piece this short that is not normal is worked character by character


def _clusters(text: str, offset: int = 0) -> list[tuple[int, str]]:
    """Split into a base character plus its combining marks, the unit NFKC may compose."""
    clusters: list[tuple[int, str]] = []
    for index, char in enumerate(text):
        if clusters and unicodedata.combining(char):
            start, chunk = clusters[-1]
            clusters[-1] = (start, chunk + char)
        else:
            clusters.append((offset + index, char))
    return clusters


_Replacements = tuple[tuple[str, str], ...]


def _translate(text: str, replacements: _Replacements = _REPLACEMENTS) -> str:
    """`text.translate(_TRANSLATION)`; the text itself when it holds none of the characters replaced.

    `replacements`: those of `_REPLACEMENTS` whose characters a text holds, when a caller works it piece by piece.
    """
    for char, replacement in replacements:
        if char in text:
            text = text.replace(char, replacement)
    return text


def _has_deleted(text: str) -> bool:
    for char in _DELETED:  # noqa: SIM110 - a plain loop: any() over a generator costs a frame per call
        if char in text:
            return True
    return False


def _translate_normal(text: str, start: int, end: int, parts: list[str], origin: list[int],
                      replacements: _Replacements) -> None:
    """A piece already in NFKC: only the translation table applies, which keeps or drops each character."""
    piece = text[start:end]
    parts.append(_translate(piece, replacements) if replacements else piece)
    if not replacements or not _has_deleted(piece):
        origin.extend(range(start, end))
    else:
        origin.extend([start + i for i, char in enumerate(piece) if char not in _DELETED])


def _normalise_clusters(text: str, start: int, end: int, parts: list[str], origin: list[int]) -> None:
    """A piece NFKC changes, cluster by cluster, each output character mapped to its cluster's start."""
    for at, chunk in _clusters(text[start:end], start):
        piece = unicodedata.normalize("NFKC", chunk).translate(_TRANSLATION)
        parts.append(piece)
        origin.extend([at] * len(piece))


def _normalise_piece(text: str, start: int, end: int, parts: list[str], origin: list[int],
                     replacements: _Replacements) -> None:
    """Halve the text (at cluster starts) until each piece is in NFKC or small: seller text is mostly normal
    already (curly quotes, accents, kana), so only the few characters NFKC changes are worked one by one. The
    NFKC test is C code that reads text faster than any regex would find the characters it changes."""
    if unicodedata.is_normalized("NFKC", text[start:end]):
        _translate_normal(text, start, end, parts, origin, replacements)
        return
    middle = (start + end) // 2
    while middle < end and unicodedata.combining(text[middle]):
        middle += 1
    if end - start <= _SMALL_PIECE or middle >= end:
        _normalise_clusters(text, start, end, parts, origin)
        return
    _normalise_piece(text, start, middle, parts, origin, replacements)
    _normalise_piece(text, middle, end, parts, origin, replacements)


def normalise_with_map(text: str) -> tuple[str, list[int] | None]:
    """The normalised text and, for each of its characters, the index of the original character it came from.

    The map is None when every character stays at its index: nothing changed (plain ASCII text), or only
    characters replaced one for one (a curly quote, a non-breaking space), the common case of seller text. Every
    piece of the result is what NFKC and the translation give its cluster alone, as if the text were worked
    cluster by cluster.
    """
    if text.isascii():  # its own NFKC: only a tab (and, with it, a backquote) is replaced
        return (_translate(text), None) if "\t" in text else (text, None)
    if unicodedata.is_normalized("NFKC", text):
        translated = _translate(text)  # the text itself when there is nothing to replace
        if len(translated) == len(text):
            return translated, None
    parts: list[str] = []
    origin: list[int] = []
    replacements = tuple([pair for pair in _REPLACEMENTS if pair[0] in text])
    _normalise_piece(text, 0, len(text), parts, origin, replacements)
    result = "".join(parts)
    if not unicodedata.is_normalized("NFKC", result):
        # A rare sequence composes only across clusters: normalise whole, keep the map approximate.
        result = unicodedata.normalize("NFKC", result).translate(_TRANSLATION)
        origin = [min(i, len(text) - 1) for i in range(len(result))] if text else []
    return result, origin


def normalise(text: str) -> str:
    """NFKC, dashes, spaces, digit-group quotes and Greek look-alikes made uniform."""
    return normalise_with_map(text)[0]


def original_span(origin: list[int] | None, start: int, end: int, original_length: int) -> tuple[int, int]:
    """Translate a [start, end) span of the normalised text back to the original text."""
    if origin is None:
        return start, end
    if not origin:
        return 0, 0
    first = origin[min(start, len(origin) - 1)]
    if end >= len(origin):
        last = original_length
    else:
        # The original index of the first normalised char after the span marks the span's end.
        last = origin[end] if origin[end] > origin[end - 1] else origin[end - 1] + 1
    return first, max(first, min(last, original_length))


_ALIAS_SEPARATORS = re.compile(r"[\s\-/.]+")


def alias_key(name: str) -> str:
    """The form two names must share to be the same alias: 'MS-20', 'MS 20' and 'ms20' all give 'ms20'."""
    return _ALIAS_SEPARATORS.sub("", normalise(name)).casefold()
