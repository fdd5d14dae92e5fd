"""One line about why a line is not JSON, with the real position: where on the line, and whether it was cut short.

`json.loads` counts the line's own newline, so a line cut short is reported "at line 2 column 1"; and some of
its messages end in "at" ("Unterminated string starting at"), so "… at at column 11" when a caller appends
"at column N". This module words both properly; every reader of JSON Lines uses it.
"""

from __future__ import annotations

import json


def describe(exc: json.JSONDecodeError, text: str) -> str:
    """`not JSON (Expecting value at column 7)`, or `not JSON (the line ends at column 6 before the record does:
    cut short?)` when the parser ran off the end of the line."""
    line = text.rstrip("\r\n")
    if exc.pos >= len(line):
        return f"not JSON (the line ends at column {len(line)} before the record does: cut short?)"
    column = exc.pos + 1
    where = f"{exc.msg} column {column}" if exc.msg.endswith(" at") else f"{exc.msg} at column {column}"
    return f"not JSON ({where})"
