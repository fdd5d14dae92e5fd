"""Judging a serial against a model's number blocks, in words a reviewer can act on.

A check returns its reasons (which blocks fit, which models the serial would fit instead, which one-edit
corrections would make it fit) so the review page can show them rather than a bare yes or no.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from pipeline.results import (
    FLAG_SERIAL_FORMAT_UNKNOWN,
    FLAG_SERIAL_OUTSIDE_BLOCKS,
    FLAG_SERIAL_WRONG_LENGTH,
    Flag,
)
from pipeline.rules import ModelRule, NumberBlock, Rules

MAX_SUGGESTIONS = 8
_EDIT_ORDER = {"substitution": 0, "transposition": 1, "deletion": 2, "insertion": 3}
_DIGITS = "0123456789"


def one_edit_variants(serial: str, lengths: frozenset[int] | None = None) -> Iterator[tuple[str, str, int]]:
    """Every digit string one typing slip away: (variant, kind of edit, position).

    With `lengths`, only the edits that can produce one of those lengths are made.
    """
    n = len(serial)
    if lengths is None or n in lengths:
        for i, old in enumerate(serial):
            for digit in _DIGITS:
                if digit != old:
                    yield serial[:i] + digit + serial[i + 1 :], "substitution", i
        for i in range(n - 1):
            if serial[i] != serial[i + 1]:
                yield serial[:i] + serial[i + 1] + serial[i] + serial[i + 2 :], "transposition", i
    if lengths is None or n - 1 in lengths:
        for i in range(n):
            yield serial[:i] + serial[i + 1 :], "deletion", i
    if lengths is None or n + 1 in lengths:
        for i in range(n + 1):
            for digit in _DIGITS:
                yield serial[:i] + digit + serial[i:], "insertion", i


def _edits_into(serial: str, block: NumberBlock) -> Iterator[tuple[str, str, int]]:
    """The one-edit variants of `serial` that land in `block`: only edits that can give its length and prefix."""
    n, prefix, p = len(serial), block.prefix, len(block.prefix)
    if n == block.length:
        diffs = [i for i in range(p) if serial[i] != prefix[i]]
        if len(diffs) == 1:
            i = diffs[0]
            yield serial[:i] + prefix[i] + serial[i + 1 :], "substitution", i
        elif not diffs:  # the prefix is right but a bound is not: any digit of the rest may be wrong
            for i in range(p, n):
                for digit in _DIGITS:
                    if digit != serial[i]:
                        yield serial[:i] + digit + serial[i + 1 :], "substitution", i
        for i in range(n - 1):
            if serial[i] != serial[i + 1]:
                variant = serial[:i] + serial[i + 1] + serial[i] + serial[i + 2 :]
                if variant.startswith(prefix):
                    yield variant, "transposition", i
    elif n == block.length - 1:
        for j in range(n + 1):
            for digit in (prefix[j],) if j < p else _DIGITS:
                variant = serial[:j] + digit + serial[j:]
                if variant.startswith(prefix):
                    yield variant, "insertion", j
    elif n == block.length + 1:
        for j in range(n):
            variant = serial[:j] + serial[j + 1 :]
            if variant.startswith(prefix):
                yield variant, "deletion", j


@lru_cache(maxsize=8192)
def suggest_corrections(serial: str, model: ModelRule, limit: int = MAX_SUGGESTIONS) -> tuple[str, ...]:
    """Corrections one edit away that fit the model, best first.

    Best means: a certain block before an uncertain one, the model's main (first-listed) block before its
    overflow blocks, a changed digit before a swap, a swap before a dropped or an added digit.
    """
    if not serial.isdigit():
        return ()
    ranked: dict[str, tuple[int, int, int, int]] = {}
    for index, block in enumerate(model.blocks):
        for variant, kind, position in _edits_into(serial, block):
            if block.fits(variant):
                rank = (0 if block.certain else 1, index, _EDIT_ORDER[kind], position)
                if variant not in ranked or rank < ranked[variant]:
                    ranked[variant] = rank
    return tuple(sorted(ranked, key=lambda v: (ranked[v], v))[:limit])


def _blocks_text(blocks: tuple[NumberBlock, ...] | list[NumberBlock]) -> str:
    return ", ".join(b.describe() for b in blocks)


def _fits_elsewhere(serial: str, model: ModelRule, rules: Rules) -> dict[str, list[NumberBlock]]:
    other: dict[str, list[NumberBlock]] = {}
    for candidate_model, block in rules.models_fitting(serial):
        if candidate_model.name != model.name:
            other.setdefault(candidate_model.name, []).append(block)
    return other


def check_serial(serial: str, model: ModelRule, rules: Rules,
                 fitting: tuple[NumberBlock, ...] | None = None) -> tuple[tuple[str, ...], tuple[Flag, ...]]:
    """The blocks of `model` that `serial` fits, and the flags it raises (none when it fits).

    `fitting` is `model.fitting_blocks(serial)` when the caller has it already.
    """
    if fitting is None:
        fitting = model.fitting_blocks(serial)
    if fitting:
        return (fitting[0].pattern,) if len(fitting) == 1 else tuple([b.pattern for b in fitting]), ()
    own = f"{model.name} ({_blocks_text(model.blocks)})"
    if not serial.isdigit():
        return (), (
            Flag(
                FLAG_SERIAL_FORMAT_UNKNOWN,
                f"{serial} is not a serial of the model-number era (six digits, e.g. {model.blocks[0].pattern}); "
                f"{own} expected",
            ),
        )
    elsewhere = _fits_elsewhere(serial, model, rules)
    where = "; ".join(f"{name} ({_blocks_text(blocks)})" for name, blocks in elsewhere.items())
    suggestions = suggest_corrections(serial, model)
    tail = f"; one edit away: {', '.join(suggestions)}" if suggestions else ""
    if len(serial) not in model.lengths:
        lengths = " or ".join(str(n) for n in sorted(model.lengths))
        fits_text = f"; it fits {where}" if where else ""
        return (), (
            Flag(
                FLAG_SERIAL_WRONG_LENGTH,
                f"{serial} has {len(serial)} digits; {model.name} serials have {lengths} "
                f"({_blocks_text(model.blocks)}){fits_text}{tail}",
                suggestions,
                tuple(elsewhere),
            ),
        )
    fits_text = f"{serial} fits {where}, not {own}" if where else f"{serial} fits no block of {own} nor any other model"
    return (), (Flag(FLAG_SERIAL_OUTSIDE_BLOCKS, fits_text + tail, suggestions, tuple(elsewhere)),)


def explain_serial(serial: str, rules: Rules) -> list[str]:
    """Sentences saying which models' blocks a serial fits and why, for `korgwatch rules explain`."""
    lines: list[str] = []
    if not serial.isdigit():
        return [f"{serial} is not a serial of the model-number era: those are digits only."]
    matches = rules.models_fitting(serial)
    for model, block in matches:
        reason = f"starts with {block.prefix}" if block.prefix else "any digits"
        bound = f", at least {block.min}" if block.min is not None else ""
        certainty = "" if block.certain else " (the register marks this block as uncertain)"
        lines.append(
            f"{serial} fits {model.name} ({block.pattern}): {len(serial)} digits, {reason}{bound}{certainty}"
            + (f" - {block.note}" if block.note else "")
        )
    if not matches:
        lines.append(f"{serial} fits no model's number block.")
        near = [
            f"{model.name}: {', '.join(s)}"
            for model in rules.models.values()
            if (s := suggest_corrections(serial, model, limit=3))
        ]
        if near:
            lines.append("One edit away: " + "; ".join(near[:6]))
    return lines
