"""Reading untrusted line-oriented input (JSON Lines, CSV) one line at a time, so a bad line costs only itself.

Input is read as bytes and decoded per line: one invalid UTF-8 byte, a Latin-1 file or a byte-order mark must
not lose the good lines around it (Python's text reader fails the whole file at the first bad byte). The same
reader serves `korgwatch analyze`, `korgwatch ingest`, `register import` and `dead-letter replay`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from db import json_errors

BOM = b"\xef\xbb\xbf"


class LineError(ValueError):
    """A line that cannot be read; the message says why, without the line's place (the caller adds it)."""


def numbered_lines(stream: Iterable[bytes | str], skip: int = 0) -> Iterator[tuple[int, bytes | str]]:
    """(line number, raw line) for every non-blank line after the first `skip` lines; numbers start at 1."""
    for number, line in enumerate(stream, start=1):
        if number <= skip:
            continue
        if line.strip():
            yield number, line


def decode_line(raw: bytes | str, number: int = 0) -> str:
    """One line as text; a UTF-8 BOM on line 1 is dropped; LineError names the first bad byte."""
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff") if number == 1 else raw
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})") from None


def parse_json(text: str, *, exact_numbers: bool = False) -> Any:
    """A JSON value, or LineError: not JSON, or nested too deeply for the parser (RecursionError).

    `exact_numbers` reads numbers with a fraction or exponent as Decimal, as written (a price of
    123456789012345.99 must not pass through a float).
    """
    try:
        if exact_numbers:
            return json.loads(text, parse_float=Decimal)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(json_errors.describe(exc, text)) from None
    except RecursionError:
        raise LineError("not JSON (nested too deeply)") from None


def read_json_line(raw: bytes | str, number: int = 0, *, exact_numbers: bool = False) -> Any:
    """`decode_line` then `parse_json`."""
    return parse_json(decode_line(raw, number), exact_numbers=exact_numbers)


def has_lone_surrogate(text: str) -> bool:
    """True when the text holds a UTF-16 surrogate on its own (JSON's "\\ud800"): it cannot be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
