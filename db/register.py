"""Import the register page's known serials from CSV (model, serial, date, note, url).

Known serials are not "new": ingest classifies a listing of one as a duplicate sale, and `export` leaves them
out. Bad rows are reported by line number and skipped; the good ones land. Re-importing the same file
changes nothing (the key is model + serial + url).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from db.bulk import insert_or_update
from db.ingest import DEFAULT_REPOST_WINDOW, reclassify_instruments
from db.jsonlines import LineError, decode_line
from db.models import Instrument, RegisterEntry
from pipeline.rules import Rules

COLUMNS = ("model", "serial", "date", "note", "url")


@dataclass
class RegisterImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    reclassified: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "reclassified": self.reclassified,
            "errors": list(self.errors),
        }


def _model_index(rules: Rules) -> dict[str, str]:
    """Canonical model name by every spelling the rules know ("MS20", "ms-20", "Σ" → ...)."""
    index: dict[str, str] = {}
    for rule in rules.models.values():
        for name in (rule.name, *rule.aliases, *rule.korg_only_aliases):
            index[_key(name)] = rule.name
    return index


def _key(name: str) -> str:
    return re.sub(r"[\s\-‐‑]+", "", name).casefold()


def parse_date(text: str) -> date:
    """`2024-11-05`, `2024-11` or `2024` (the register often knows only the month or the year)."""
    parts = text.strip().split("-")
    if len(parts) == 3:
        return date.fromisoformat(text.strip())
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return date(int(parts[0]), int(parts[1]), 1)
    if len(parts) == 1 and parts[0].isdigit() and len(parts[0]) == 4:
        return date(int(parts[0]), 1, 1)
    raise ValueError(text)


def read_register_csv(stream: IO[str], rules: Rules, errors: list[str], name: str = "") -> list[dict[str, Any]]:
    """The valid rows as column values; problems go to `errors` as "file: line N: what"."""
    prefix = f"{name}: " if name else ""
    reader = csv.DictReader(stream)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("model", "serial") if c not in header]
    if missing:
        errors.append(f"{prefix}line 1: missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
        return []
    reader.fieldnames = header
    models = _model_index(rules)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for raw in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in raw.items() if k is not None and isinstance(v, str | type(None))}
        if not any(values.values()):
            continue
        model = models.get(_key(values.get("model", "")))
        serial = re.sub(r"\s+", "", values.get("serial", "")).upper()
        if not values.get("model"):
            errors.append(f"{prefix}line {line}: no model")
            continue
        if model is None:
            errors.append(f"{prefix}line {line}: unknown model {values['model']!r}")
            continue
        if not serial:
            errors.append(f"{prefix}line {line}: no serial")
            continue
        if len(serial) > 32:
            errors.append(f"{prefix}line {line}: serial too long ({serial[:40]}...)")
            continue
        when: date | None = None
        if values.get("date"):
            try:
                when = parse_date(values["date"])
            except ValueError:
                errors.append(f"{prefix}line {line}: date {values['date']!r} is not YYYY-MM-DD, YYYY-MM or YYYY")
                continue
        url = values.get("url", "")
        rows[(model, serial, url)] = {
            "model": model,
            "serial": serial,
            "date": when,
            "note": values.get("note") or None,
            "url": url,
        }
    return list(rows.values())


def import_register_rows(
    session: Session, rows: Iterable[dict[str, Any]], summary: RegisterImportSummary | None = None
) -> RegisterImportSummary:
    """Upsert validated rows, then reclassify listings of these (now known) serials. Never commits."""
    summary = summary or RegisterImportSummary()
    rows = list(rows)
    if not rows:
        return summary
    existing: dict[tuple[str, str, str], tuple[date | None, str | None]] = {}
    keys = [(r["model"], r["serial"], r["url"]) for r in rows]
    for start in range(0, len(keys), 300):
        chunk = keys[start : start + 300]
        for model, serial, url, when, note in session.execute(
            select(
                RegisterEntry.model,
                RegisterEntry.serial,
                RegisterEntry.url,
                RegisterEntry.date,
                RegisterEntry.note,
            ).where(tuple_(RegisterEntry.model, RegisterEntry.serial, RegisterEntry.url).in_(chunk))
        ):
            existing[(model, serial, url)] = (when, note)
    changed = []
    for row in rows:
        key = (row["model"], row["serial"], row["url"])
        if key not in existing:
            summary.added += 1
            changed.append(row)
        elif existing[key] != (row["date"], row["note"]):
            summary.updated += 1
            changed.append(row)
        else:
            summary.unchanged += 1
    if changed:
        session.execute(
            insert_or_update(session, RegisterEntry.__table__, ["model", "serial", "url"], ["date", "note"]),
            changed,
        )
        pairs = sorted({(r["model"], r["serial"]) for r in changed})
        ids: list[int] = []
        for start in range(0, len(pairs), 300):
            ids += session.scalars(
                select(Instrument.id).where(tuple_(Instrument.model, Instrument.serial).in_(pairs[start : start + 300]))
            ).all()
        summary.reclassified = reclassify_instruments(session, ids, DEFAULT_REPOST_WINDOW)
    return summary


def decoded_lines(stream: IO[bytes], errors: list[str], name: str = "") -> list[str]:
    """The file's lines as text, decoded one by one: a line that is not UTF-8 is reported ("file: line N: not
    UTF-8 text (byte 0xff at byte 12)") and read as an empty line, so the others keep their numbers."""
    prefix = f"{name}: " if name else ""
    lines = []
    for number, raw in enumerate(stream, 1):
        try:
            lines.append(decode_line(raw, number))
        except LineError as exc:
            errors.append(f"{prefix}line {number}: {exc}")
            lines.append("\n")
    return lines


def import_register_csv(
    session: Session, path: str | Path | IO[bytes] | IO[str], rules: Rules
) -> RegisterImportSummary:
    """Read and import one CSV file; bad rows (and lines that are not UTF-8) are reported in `errors`, good
    ones kept."""
    summary = RegisterImportSummary()
    if isinstance(path, str | Path):
        with open(path, "rb") as stream:
            lines = decoded_lines(stream, summary.errors, str(path))
        rows = read_register_csv(io.StringIO("".join(lines), newline=""), rules, summary.errors, str(path))
    else:
        rows = read_register_csv(path, rules, summary.errors)  # type: ignore[arg-type]
    return import_register_rows(session, rows, summary)
