"""Text normalisation that keeps a map back to the original, so spans found in clean text highlight the raw one.

Sellers write full-width digits (１４４５７１), the register writes non-breaking hyphens (MS‑20), and Greek
model letters arrive as look-alike maths symbols (∆ for Δ). Matching runs on the normalised text.
"""

from __future__ import annotations

import functools
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
_NEEDS_TRANSLATION = re.compile("[" + "".join(re.escape(chr(c)) for c in _TRANSLATION) + "]")


_REPLACEMENTS = {chr(c): to for c, to in _TRANSLATION.items()}
_DELETED = re.compile("[" + "".join(re.escape(chr(c)) for c, to in _TRANSLATION.items() if to == "") + "]")


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


def _replacement(match: re.Match[str]) -> str:
    return _REPLACEMENTS[match.group()]


def _translate(text: str) -> str:
    """`text.translate(_TRANSLATION)`: a regex finds the few characters to replace, where `translate` would look
    each character of the text up in the table (ten times slower on text that is not ASCII)."""
    return _NEEDS_TRANSLATION.sub(_replacement, text)


def _translate_normal(text: str, start: int, end: int, parts: list[str], origin: list[int]) -> None:
    """A piece already in NFKC: only the translation table applies, which keeps or drops each character."""
    piece = text[start:end]
    parts.append(_translate(piece))
    if _DELETED.search(piece) is None:
        origin.extend(range(start, end))
    else:
        origin.extend([start + i for i, char in enumerate(piece) if _DELETED.match(char) is None])


def _normalise_clusters(text: str, start: int, end: int, parts: list[str], origin: list[int]) -> None:
    """A piece NFKC changes, cluster by cluster, each output character mapped to its cluster's start."""
    for at, chunk in _clusters(text[start:end], start):
        piece = unicodedata.normalize("NFKC", chunk).translate(_TRANSLATION)
        parts.append(piece)
        origin.extend([at] * len(piece))


# Where to look for characters NFKC changes: no later plane has a compatibility form or a combining mark (checked
# against the whole of Unicode by tests/test_normalise.py).
_LAST_CHANGING = 0x2FFFF


@functools.cache
def _changing_runs() -> re.Pattern[str]:
    """Runs of the characters NFKC may change on their own or with their neighbours: those it maps to something
    else, and the combining marks. Built once, on the first text that needs it, from this Python's Unicode
    database (a tenth of a second): plain and already-normal text never pays for it."""
    normalize, combining, decomposition = unicodedata.normalize, unicodedata.combining, unicodedata.decomposition
    ranges: list[tuple[int, int]] = []
    for code in range(0x80, _LAST_CHANGING + 1):
        char = chr(code)
        if combining(char) or (decomposition(char) and normalize("NFKC", char) != char):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    spans = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{spans}]+")


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
    # Only the runs of characters NFKC changes are worked cluster by cluster; the text between them is normal.
    parts: list[str] = []
    origin: list[int] = []
    done = 0
    for run in _changing_runs().finditer(text):
        start, end = run.span()
        if start > done and unicodedata.combining(text[start]):
            start -= 1  # a combining mark composes with the base before it: work them as one cluster
        if start > done:
            _translate_normal(text, done, start, parts, origin)
        _normalise_clusters(text, start, end, parts, origin)
        done = end
    if done < len(text):
        _translate_normal(text, done, len(text), parts, origin)
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
