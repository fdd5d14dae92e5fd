"""Watchlists: models, serials and serial ranges the keeper wants to hear about at once (a stolen unit…).

A listing hits a watch when the serial the analyser recorded is watched, is a one-edit neighbour of a watched
serial (a seller's typo: 439057 for 439075 is two edits, 43905 or 4390577 one), or when the watched serial
stands anywhere in its title or body as a number of its own (a candidate the analyser did not pick).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from db.models import Watch


class WatchError(ValueError):
    """A watch that cannot be stored (bad range, duplicate)."""


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """A watch as matched: model, optional serial or range (inclusive, numeric when both are digits)."""

    id: int
    model: str
    low: str
    high: str
    note: str | None

    def describe(self) -> str:
        if not self.low:
            return f"{self.model} (any serial)"
        return f"{self.model} {self.low}" if self.low == self.high else f"{self.model} {self.low}–{self.high}"

    def in_range(self, serial: str) -> bool:
        if not self.low:
            return True
        if self.low == self.high:
            return serial == self.low
        if serial.isdigit() and self.low.isdigit() and self.high.isdigit() and len(serial) == len(self.low):
            return int(self.low) <= int(serial) <= int(self.high)
        return False

    def neighbour(self, serial: str) -> bool:
        """A one-edit neighbour of the single watched serial (ranges and model watches have none)."""
        return bool(self.low) and self.low == self.high and serial != self.low and one_edit(serial, self.low)

    def in_text(self, text: str) -> bool:
        """The single watched serial standing in `text` as a number of its own."""
        if not self.low or self.low != self.high:
            return False
        return re.search(rf"(?<![0-9A-Za-z]){re.escape(self.low)}(?![0-9A-Za-z])", text) is not None


def one_edit(a: str, b: str) -> bool:
    """Whether `a` becomes `b` by one substitution, insertion or deletion."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def parse_serial_spec(spec: str) -> tuple[str, str]:
    """'' (the whole model), '439057', or a range '439000-439099' → (low, high); raises WatchError."""
    spec = spec.strip()
    if spec in ("", "*"):
        return "", ""
    if "-" in spec:
        low, _, high = (part.strip() for part in spec.partition("-"))
        if not (low.isdigit() and high.isdigit() and len(low) == len(high)):
            raise WatchError(f"range {spec!r}: expected two numbers of the same length, e.g. 439000-439099")
        if int(low) > int(high):
            raise WatchError(f"range {spec!r}: the first number is larger than the second")
        return low, high
    if not re.fullmatch(r"[0-9A-Za-z]{1,32}", spec):
        raise WatchError(f"serial {spec!r}: expected letters and digits only")
    return spec, spec


def _find(model: str, low: str, high: str) -> Select[Any]:
    return select(Watch).where(Watch.model == model, Watch.serial_low == low, Watch.serial_high == high)


def add_watch(session: Session, model: str, spec: str, note: str | None, now: datetime) -> Watch:
    low, high = parse_serial_spec(spec)
    existing = session.scalar(_find(model, low, high))
    if existing is not None:
        if note is not None:
            existing.note = note
        return existing
    watch = Watch(model=model, serial_low=low, serial_high=high, note=note, created_at=now)
    session.add(watch)
    session.flush()
    return watch


def remove_watch(session: Session, model: str, spec: str) -> bool:
    low, high = parse_serial_spec(spec)
    watch = session.scalar(_find(model, low, high))
    if watch is None:
        return False
    session.delete(watch)
    return True


def list_watches(session: Session) -> list[WatchSpec]:
    rows = session.scalars(select(Watch).order_by(Watch.model, Watch.serial_low, Watch.id))
    return [WatchSpec(w.id, w.model, w.serial_low, w.serial_high, w.note) for w in rows]
