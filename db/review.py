"""Review decisions as library functions: the CLI and the review page call these; nothing else decides.

Each decision changes the flag (and its appearance) and appends one row to `review_log` with the old and new
values, so the register's history can always be explained. What the decisions mean:
- confirm: the analyser's reading is right; the appearance counts once it has no open flags left;
- correct: the serial (and/or model) was misread; the appearance moves to the right instrument and counts;
- dismiss: not a sighting at all (wrong instrument, a photo of another unit...); the appearance never counts;
- different unit: a second physical instrument with the same model and serial; the appearance (and any later
  ones the reviewer names) become the next unit of that serial, with its own first sighting.
Functions take a Session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.ingest import DEFAULT_REPOST_WINDOW, ensure_instruments, reclassify_instruments, utcnow
from db.models import APPEARANCE_KINDS, Appearance, Flag, Instrument, ReviewLog
from db.review_chain import seal
from pipeline.rules import Rules


class ReviewError(ValueError):
    """A decision that cannot be applied (unknown flag, already decided, serial that fits no block...)."""


class OutsideBlocks(ReviewError):
    """A correction to a serial that fits none of the model's blocks: kept only when the reviewer forces it."""

    def __init__(self, message: str, *, model: str, serial: str) -> None:
        super().__init__(message)
        self.model = model
        self.serial = serial


def _flag(session: Session, flag_id: int, *, open_only: bool = True) -> Flag:
    flag = session.get(Flag, flag_id)
    if flag is None:
        raise ReviewError(f"no flag {flag_id}")
    if open_only and flag.status != "open":
        raise ReviewError(f"flag {flag_id} is already {flag.status} (by {flag.reviewer or 'unknown'})")
    return flag


def _appearance_state(appearance: Appearance | None) -> dict[str, Any] | None:
    if appearance is None:
        return None
    return {
        "model": appearance.instrument.model,
        "serial": appearance.instrument.serial,
        "unit": appearance.instrument.unit,
        "kind": appearance.kind,
        "status": appearance.status,
    }


def _flag_state(flag: Flag) -> dict[str, Any]:
    """What a flag decision changes, as the review log records it before and after."""
    return {"flag": flag.status, "appearance": _appearance_state(flag.appearance)}


def _log(
    session: Session,
    *,
    action: str,
    reviewer: str,
    at: datetime,
    flag: Flag | None = None,
    appearance: Appearance | None = None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    note: str | None = None,
) -> ReviewLog:
    entry = ReviewLog(
        flag_id=flag.id if flag else None,
        appearance_id=appearance.id if appearance else None,
        action=action,
        old_value=old,
        new_value=new,
        reviewer=reviewer,
        at=at,
        note=note,
    )
    seal(session, entry)
    session.add(entry)
    session.flush()
    return entry


def _decide(flag: Flag, status: str, reviewer: str, at: datetime, note: str | None) -> None:
    flag.status = status
    flag.reviewer = reviewer
    flag.decided_at = at
    if note:
        flag.note = note


def _settle(session: Session, appearance: Appearance, at: datetime) -> None:
    """An appearance counts once none of its flags is open (and no reviewer dismissed it)."""
    session.flush()
    still_open = session.scalar(
        select(Flag.id).where(Flag.appearance_id == appearance.id, Flag.status == "open").limit(1)
    )
    appearance.reviewed_at = at
    if appearance.status != "dismissed":
        appearance.status = "pending" if still_open else "counted"


def confirm(session: Session, flag_id: int, reviewer: str, note: str | None = None) -> Flag:
    """The analyser read it right: close the flag; the appearance counts once no flag is left open."""
    at = utcnow()
    flag = _flag(session, flag_id)
    appearance = flag.appearance
    old = _flag_state(flag)
    _decide(flag, "confirmed", reviewer, at, note)
    if appearance is not None:
        _settle(session, appearance, at)
    new = _flag_state(flag)
    _log(
        session,
        action="confirm",
        reviewer=reviewer,
        at=at,
        flag=flag,
        appearance=appearance,
        old=old,
        new=new,
        note=note,
    )
    return flag


def _move(session: Session, appearance: Appearance, model: str, serial: str, window: timedelta) -> tuple[int, int]:
    """Point an appearance at another instrument, then reclassify both instruments' sightings."""
    old_instrument = appearance.instrument_id
    new_instrument = ensure_instruments(session, [(model, serial)])[(model, serial)]
    if appearance.kind == "new":  # step aside first: the target may already have its `new`
        appearance.kind = "duplicate_sale"
        session.flush()
    appearance.instrument_id = new_instrument
    session.flush()
    session.expire(appearance, ["instrument"])
    reclassify_instruments(session, [old_instrument, new_instrument], window)
    session.refresh(appearance)
    return old_instrument, new_instrument


def correct(
    session: Session,
    flag_id: int,
    reviewer: str,
    rules: Rules,
    *,
    serial: str | None = None,
    model: str | None = None,
    reason: str,
    force: bool = False,
    window: timedelta = DEFAULT_REPOST_WINDOW,
) -> Flag:
    """The listing misstates the serial and/or model: record the right one (it must fit one of the model's
    blocks unless `force`), with the reviewer's reason; the appearance then counts under the right instrument.
    """
    if not reason or not reason.strip():
        raise ReviewError("a correction needs a reason")
    at = utcnow()
    flag = _flag(session, flag_id)
    appearance = flag.appearance
    if appearance is None:
        raise ReviewError(f"flag {flag_id} is on a listing without a serial; confirm or dismiss it instead")
    target_model = model or appearance.instrument.model
    target_serial = (serial or appearance.instrument.serial).strip().upper()
    if target_model not in rules.models:
        raise ReviewError(f"unknown model {target_model!r}")
    outside = not rules.fits(target_model, target_serial)
    if outside and not force:
        blocks = ", ".join(b.describe() for b in rules.model(target_model).blocks)
        raise OutsideBlocks(
            f"{target_serial} fits no block of {target_model} ({blocks}); use force to keep it",
            model=target_model,
            serial=target_serial,
        )
    old = _flag_state(flag)
    _move(session, appearance, target_model, target_serial, window)
    _decide(flag, "corrected", reviewer, at, reason)
    _settle(session, appearance, at)
    new = {**_flag_state(flag), "forced": True} if outside else _flag_state(flag)
    _log(
        session,
        action="correct",
        reviewer=reviewer,
        at=at,
        flag=flag,
        appearance=appearance,
        old=old,
        new=new,
        note=reason,
    )
    return flag


def change_model(
    session: Session,
    flag_id: int,
    model: str,
    reviewer: str,
    rules: Rules,
    *,
    reason: str,
    force: bool = False,
) -> Flag:
    """The serial is right but the listing names the wrong model (the seed's "MS url says Sigma but it's a
    Lambda"): a correction of the model only."""
    return correct(session, flag_id, reviewer, rules, model=model, reason=reason, force=force)


def dismiss(
    session: Session,
    flag_id: int,
    reviewer: str,
    note: str | None = None,
    window: timedelta = DEFAULT_REPOST_WINDOW,
) -> Flag:
    """Not a sighting: close the flag and take the appearance out of the count and the classification."""
    at = utcnow()
    flag = _flag(session, flag_id)
    appearance = flag.appearance
    old = _flag_state(flag)
    _decide(flag, "dismissed", reviewer, at, note)
    if appearance is not None:
        if appearance.kind == "new":
            appearance.kind = "duplicate_sale"  # let the next sighting become the first one
        appearance.status = "dismissed"
        appearance.reviewed_at = at
        session.flush()
        reclassify_instruments(session, [appearance.instrument_id], window)
        session.refresh(appearance)
    new = _flag_state(flag)
    _log(
        session,
        action="dismiss",
        reviewer=reviewer,
        at=at,
        flag=flag,
        appearance=appearance,
        old=old,
        new=new,
        note=note,
    )
    return flag


def mark_kind(
    session: Session,
    appearance_id: int,
    kind: str,
    reviewer: str,
    note: str | None = None,
    window: timedelta = DEFAULT_REPOST_WINDOW,
) -> Appearance:
    """Overrule the classifier (e.g. "different photographs but seemingly the same seller" → repost); the
    kind is then kept through later re-classifications."""
    if kind not in APPEARANCE_KINDS:
        raise ReviewError(f"kind must be one of {', '.join(APPEARANCE_KINDS)}")
    at = utcnow()
    appearance = session.get(Appearance, appearance_id)
    if appearance is None:
        raise ReviewError(f"no appearance {appearance_id}")
    if kind == "new":
        other = session.scalar(
            select(Appearance.id).where(
                Appearance.instrument_id == appearance.instrument_id,
                Appearance.kind == "new",
                Appearance.id != appearance.id,
            )
        )
        if other is not None:
            raise ReviewError(f"appearance {other} is already the first sighting of this instrument")
    old = _appearance_state(appearance)
    appearance.kind = kind
    appearance.kind_locked = True
    appearance.reviewed_at = at
    session.flush()
    reclassify_instruments(session, [appearance.instrument_id], window)
    session.refresh(appearance)
    _log(
        session,
        action="mark_kind",
        reviewer=reviewer,
        at=at,
        appearance=appearance,
        old=old,
        new=_appearance_state(appearance),
        note=note,
    )
    return appearance


def _unit_state(appearance: Appearance) -> dict[str, Any]:
    return {
        "model": appearance.instrument.model,
        "serial": appearance.instrument.serial,
        "unit": appearance.instrument.unit,
        "kind": appearance.kind,
        "status": appearance.status,
    }


def mark_different_unit(
    session: Session,
    appearance_id: int,
    reviewer: str,
    note: str | None = None,
    *,
    later: Iterable[int] = (),
    window: timedelta = DEFAULT_REPOST_WINDOW,
) -> Instrument:
    """A different physical unit with the same serial ("A second MS-10 with this serial number. Visibly
    different from the first."): move the appearance, and the `later` appearances the reviewer names, to a
    new unit of the same model+serial, whose first sighting (`new`, kept through re-classifications) it
    becomes; both units' remaining sightings are classified again. Returns the new unit's instrument.
    """
    at = utcnow()
    appearance = session.get(Appearance, appearance_id)
    if appearance is None:
        raise ReviewError(f"no appearance {appearance_id}")
    if appearance.status == "dismissed":
        raise ReviewError(f"appearance {appearance_id} was dismissed: it is not a sighting of any unit")
    source = appearance.instrument
    others: list[Appearance] = []
    for other_id in dict.fromkeys(later):
        if other_id == appearance_id:
            continue
        other = session.get(Appearance, other_id)
        if other is None:
            raise ReviewError(f"no appearance {other_id}")
        if other.instrument_id != source.id:
            what = f"{source.model} {source.serial} unit {source.unit}"
            raise ReviewError(f"appearance {other_id} is not a sighting of {what}")
        if (other.seen_at, other.id) < (appearance.seen_at, appearance.id):
            raise ReviewError(
                f"appearance {other_id} is older than {appearance_id}: name the other unit's earliest sighting"
            )
        others.append(other)
    moving = {appearance.id, *(o.id for o in others)}
    staying = session.scalar(
        select(func.count()).where(
            Appearance.instrument_id == source.id,
            Appearance.status != "dismissed",
            Appearance.id.not_in(moving),
        )
    )
    if not staying:
        raise ReviewError(
            f"no other sighting of {source.model} {source.serial} unit {source.unit} would be left: "
            "a different unit needs the first one to differ from"
        )
    old = {"appearance": _unit_state(appearance), "moved": sorted(moving)}
    # Two reviewers splitting the same serial take turns (PostgreSQL; SQLite's write lock already does this);
    # the unique key (model, serial, unit) is the backstop.
    session.execute(
        select(Instrument.id)
        .where(Instrument.model == source.model, Instrument.serial == source.serial, Instrument.unit == 1)
        .with_for_update()
    )
    top = session.scalar(
        select(func.max(Instrument.unit)).where(Instrument.model == source.model, Instrument.serial == source.serial)
    )
    unit = Instrument(model=source.model, serial=source.serial, unit=(top or 1) + 1)
    session.add(unit)
    session.flush()
    for other in others:
        if other.kind == "new":  # the one `new` of the new unit is `appearance`
            other.kind, other.kind_locked = "duplicate_sale", False
        other.instrument_id = unit.id
        other.reviewed_at = at
    appearance.instrument_id = unit.id
    appearance.kind = "new"
    appearance.kind_locked = True
    appearance.reviewed_at = at
    session.flush()
    for moved in (appearance, *others):
        session.expire(moved, ["instrument"])
    reclassify_instruments(session, [source.id, unit.id], window)
    session.refresh(appearance)
    _log(
        session,
        action="different_unit",
        reviewer=reviewer,
        at=at,
        appearance=appearance,
        old=old,
        new={"appearance": _unit_state(appearance), "moved": sorted(moving)},
        note=note,
    )
    return unit


def add_note(session: Session, flag_id: int, reviewer: str, note: str) -> Flag:
    """A remark on a flag without deciding it ("s/n only visible on box")."""
    at = utcnow()
    flag = _flag(session, flag_id, open_only=False)
    old = {"note": flag.note}
    flag.note = f"{flag.note}\n{note}" if flag.note else note
    _log(
        session,
        action="note",
        reviewer=reviewer,
        at=at,
        flag=flag,
        appearance=flag.appearance,
        old=old,
        new={"note": flag.note},
        note=note,
    )
    return flag


DECISIONS = ("confirm", "correct", "dismiss")


def _instrument_id(session: Session, model: str, serial: str, unit: int) -> int:
    """The instrument (model, serial, unit), created when it is unit 1 and gone (a correction made it new)."""
    found = session.scalar(
        select(Instrument.id).where(Instrument.model == model, Instrument.serial == serial, Instrument.unit == unit)
    )
    if found is not None:
        return found
    if unit != 1:
        raise ReviewError(f"{model} {serial} unit {unit} no longer exists: correct the flag instead of reopening it")
    return ensure_instruments(session, [(model, serial)])[(model, serial)]


def reopen(
    session: Session,
    flag_id: int,
    reviewer: str,
    note: str | None = None,
    *,
    undo: bool = False,
    window: timedelta = DEFAULT_REPOST_WINDOW,
) -> Flag:
    """Take a decision back: the flag is open again and its appearance is where it was before the decision
    (a correction moved back, a dismissal lifted), waiting for review. The decision's log entry stays; this
    one is added after it (`undo` when the page's undo asked, `reopen` otherwise)."""
    at = utcnow()
    flag = _flag(session, flag_id, open_only=False)
    if flag.status == "open":
        raise ReviewError(f"flag {flag_id} is open: there is no decision to take back")
    decision = session.scalar(
        select(ReviewLog)
        .where(ReviewLog.flag_id == flag_id, ReviewLog.action.in_(DECISIONS))
        .order_by(ReviewLog.id.desc())
        .limit(1)
    )
    appearance = flag.appearance
    old = _flag_state(flag)
    before = (decision.old_value or {}).get("appearance") if decision is not None else None
    if appearance is not None:
        if isinstance(before, dict) and before.get("model") and before.get("serial"):
            model, serial, unit = str(before["model"]), str(before["serial"]), int(before.get("unit") or 1)
            current = appearance.instrument
            if (current.model, current.serial, current.unit) != (model, serial, unit):
                old_instrument = appearance.instrument_id
                target = _instrument_id(session, model, serial, unit)
                if appearance.kind == "new":  # step aside first: the target may already have its `new`
                    appearance.kind = "duplicate_sale"
                    session.flush()
                appearance.instrument_id = target
                session.flush()
                session.expire(appearance, ["instrument"])
                reclassify_instruments(session, [old_instrument, target], window)
        if appearance.status == "dismissed":
            appearance.status = "pending"
    flag.status = "open"
    flag.reviewer = None
    flag.decided_at = None
    if appearance is not None:
        _settle(session, appearance, at)
        reclassify_instruments(session, [appearance.instrument_id], window)
        session.refresh(appearance)
    new = {**_flag_state(flag), "takes_back": decision.id if decision is not None else None}
    _log(
        session,
        action="undo" if undo else "reopen",
        reviewer=reviewer,
        at=at,
        flag=flag,
        appearance=appearance,
        old=old,
        new=new,
        note=note,
    )
    return flag


def review_log_for(session: Session, flag_id: int) -> list[ReviewLog]:
    """The decisions on one flag, oldest first."""
    return list(session.scalars(select(ReviewLog).where(ReviewLog.flag_id == flag_id).order_by(ReviewLog.id)))


def instrument_of(session: Session, appearance_id: int) -> Instrument:
    appearance = session.get(Appearance, appearance_id)
    if appearance is None:
        raise ReviewError(f"no appearance {appearance_id}")
    return appearance.instrument
