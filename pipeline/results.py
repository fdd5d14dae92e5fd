"""Frozen result types of the analyser: what was found, where, and why it is (not) trusted.

The review page and the store read these; nothing here knows of Scrapy or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar

Field = Literal["title", "body"]

FLAG_SERIAL_OUTSIDE_BLOCKS = "serial_outside_blocks"
FLAG_SERIAL_WRONG_LENGTH = "serial_wrong_length"
FLAG_SERIAL_FORMAT_UNKNOWN = "serial_format_unknown"
FLAG_TITLE_BODY_MISMATCH = "title_body_mismatch"
FLAG_CODES = (
    FLAG_SERIAL_OUTSIDE_BLOCKS,
    FLAG_SERIAL_WRONG_LENGTH,
    FLAG_SERIAL_FORMAT_UNKNOWN,
    FLAG_TITLE_BODY_MISMATCH,
)
# Raised by the store, not the analyser: a listing's kept photo is an earlier listing's of another serial
# (db/photo_matching.py). Every code a reviewer or a filter may meet:
FLAG_PHOTO_REUSED = "photo_reused"
ALL_FLAG_CODES = (*FLAG_CODES, FLAG_PHOTO_REUSED)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SerialCandidate:
    """A string that may be a serial number, with where it stood in the original text.

    `serial` is the canonical form (digits with separators removed, letters upper-cased); `raw` is the text
    as written; `start`/`end` index the original (un-normalised) field. `cue` is the word that introduced it
    ("S/N", "製造番号", "#") or None for a bare number.
    """

    serial: str
    raw: str
    field: Field
    start: int
    end: int
    cue: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "raw": self.raw,
            "field": self.field,
            "start": self.start,
            "end": self.end,
            "cue": self.cue,
        }


@dataclass(frozen=True, slots=True)
class ModelMention:
    """A vintage model named in the text (after reissues and other makes were ruled out)."""

    model: str
    alias: str
    field: Field
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Flag:
    """Something a human should look at, with the reason in words and the evidence as data."""

    code: str
    message: str
    suggestions: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "suggestions": list(self.suggestions),
            "models": list(self.models),
        }


@dataclass(frozen=True, slots=True)
class Instrument:
    """One vintage instrument in a listing: its model, the serial recorded for it, and its flags.

    `serial` is None when the listing gives none. `serial_candidate` is the candidate chosen as the serial
    (its span is what the review page highlights); `candidates` are all candidates assigned to this instrument.
    `fits` names the blocks the chosen serial fits ("14nnnn"), empty when it fits none.
    """

    model: str
    serial: str | None
    serial_candidate: SerialCandidate | None = None
    flags: tuple[Flag, ...] = ()
    candidates: tuple[SerialCandidate, ...] = ()
    fits: tuple[str, ...] = ()
    mention: ModelMention | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "serial": self.serial,
            "serial_span": None if self.serial_candidate is None else self.serial_candidate.to_dict(),
            "fits": list(self.fits),
            "flags": [f.to_dict() for f in self.flags],
            "candidates": [c.to_dict() for c in self.candidates],
        }


@dataclass(frozen=True, slots=True)
class ListingAnalysis:
    """The analyser's verdict on one listing. `excluded` names reissues/other makes that were recognised.

    `cut` names the fields read only in part, each with how much was read ("body: first 65536 of 2000000
    characters read"): the analyser reads at most `pipeline.analyse.MAX_TITLE` and `MAX_BODY` characters.
    """

    instruments: tuple[Instrument, ...] = ()
    excluded: tuple[str, ...] = field(default=())
    cut: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "instruments": [i.to_dict() for i in self.instruments],
            "excluded": list(self.excluded),
        }
        if self.cut:
            data["cut"] = list(self.cut)
        return data


def fast_builder(cls: type[_T]) -> Callable[..., _T]:
    """A constructor for a frozen slotted dataclass that skips its __init__'s object.__setattr__ per field.

    The analyser builds several result objects per listing, and a frozen dataclass's __init__ costs 1-2 us each
    on this CPython. The builder is a twin class with the same slots that assigns them plainly and then turns
    into `cls` (`__class__` assignment is allowed between identical layouts), so the result is an ordinary,
    frozen `cls` instance. It takes every field, positionally and in order; it neither applies defaults nor
    runs `__post_init__` (the result types have none).
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    source = (
        f"def __init__(self, {', '.join(names)}):\n"
        + "".join(f"    self.{name} = {name}\n" for name in names)
        + "    self.__class__ = cls\n"
    )
    namespace: dict[str, Any] = {"cls": cls}
    exec(source, namespace)
    return type(f"_{cls.__name__}Builder", (), {"__slots__": names, "__init__": namespace["__init__"]})


new_serial_candidate = fast_builder(SerialCandidate)
new_model_mention = fast_builder(ModelMention)
new_flag = fast_builder(Flag)
new_instrument = fast_builder(Instrument)
new_listing_analysis = fast_builder(ListingAnalysis)
