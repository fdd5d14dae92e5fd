"""What the store keeps of an analysis: per instrument the serial, its span and fits, and the flags raised.

The analyser's result objects carry more (every candidate, the model mention, the page's messages). The
store reads only this much, so ingest turns each analysis into these plain tuples once, and its per-row
loops read tuple fields instead of walking the result objects; an analysis that raised becomes the reason,
so one bad listing never loses its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from pipeline.results import ListingAnalysis
from pipeline.rules import Rules

Analyser = Callable[[str, str, Rules], ListingAnalysis]


class FoundFlag(NamedTuple):
    code: str
    details: dict[str, Any]  # the flag as the review queue shows it (Flag.to_dict)


class FoundInstrument(NamedTuple):
    model: str
    serial: str | None
    serial_raw: str | None
    serial_field: str | None
    serial_start: int | None
    serial_end: int | None
    fits: tuple[str, ...]
    flags: tuple[FoundFlag, ...]


Findings = tuple[FoundInstrument, ...]


class Analysed(NamedTuple):
    """One listing's findings and the fields the analyser read only in part (`ListingAnalysis.cut`)."""

    findings: Findings
    cut: tuple[str, ...]


def findings_of(analysis: ListingAnalysis) -> Findings:
    """The store's view of one listing's analysis."""
    found = []
    for instrument in analysis.instruments:
        span = instrument.serial_candidate
        found.append(
            FoundInstrument(
                instrument.model,
                instrument.serial,
                None if span is None else span.raw,
                None if span is None else span.field,
                None if span is None else span.start,
                None if span is None else span.end,
                instrument.fits,
                tuple(FoundFlag(flag.code, flag.to_dict()) for flag in instrument.flags),
            )
        )
    return tuple(found)


def analyse_findings(analyse: Analyser, title: str, body: str, rules: Rules) -> Analysed | str:
    """The findings of one listing, or why its analysis failed: a bug in the analyser must not lose a batch."""
    try:
        analysis = analyse(title, body, rules)
        return Analysed(findings_of(analysis), tuple(getattr(analysis, "cut", ())))
    except Exception as exc:
        return f"analysis failed ({type(exc).__name__}: {exc})"
