"""Store listings and what the analyser finds in them: the one entry point for `korgwatch ingest` and crawler.

`ingest_records` works on a whole batch with a handful of Core bulk statements (not one ORM flush per row),
so that a 100,000-listing backfill stays close to raw `executemany` speed. It never commits: the caller owns
the transaction, and `ingest_jsonl` uses one transaction per batch. A batch the database refuses (for any
reason but being unavailable) is split and retried by `store_isolating` until the refused records stand
alone: they are reported, the rest is stored.

How an appearance is classified (the register page's vocabulary):
- the first sighting of a model+serial is `new`, unless the register already has it (then the listing is a
  later sale of a known instrument: `duplicate_sale`);
- a later sighting is `repost` when one of its kept photos is near-identical to one of ANY earlier sighting's
  (db.photo_matching: the pair is kept as `kind_evidence`), when it has the same seller as the previous
  sighting within the repost window, or shares an image URL with it, else `duplicate_sale`.
Sightings are ordered by the listing's posted time (else first-seen), so ingesting an old archive after a new
crawl still gives the January listing `new` and the June one `duplicate_sale`.

Two units, one serial: once a reviewer has split a serial into units (`db.review.mark_different_unit`), a new
listing of it joins unit 1's timeline, unless it shares a photo URL with a sighting of exactly one other unit,
or (no photo shared with any unit) has the seller of a sighting of exactly one other unit. A listing that fits
several units, or none, stays with unit 1: the reviewer moves it if need be.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from sqlalchemy import Engine, Select, delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from db.bulk import (
    KEYS_PER_LOOKUP,
    bulk_insert,
    bulk_insert_ids,
    bulk_update,
    insert_ignore,
    insert_ignore_returning,
    one_of,
)
from db.engine import session_scope
from db.findings import Analyser, Findings, FoundInstrument, analyse_findings
from db.jsonlines import LineError, numbered_lines, read_json_line
from db.models import Appearance, Flag, Instrument, Listing, ListingRevision, RegisterEntry, Source
from db.photo_matching import BatchSighting, PhotoMatcher, photo_reused_flags
from db.photos import FetchedPhoto, ListingKey, store_listing_photos
from db.records import RecordError, StoredRecord, normalise_record
from pipeline.rules import Rules

DEFAULT_REPOST_WINDOW = timedelta(days=60)
DEFAULT_BATCH_SIZE = 2000
CHUNK = KEYS_PER_LOOKUP  # keys per look-up statement (db.bulk.one_of binds them as one parameter)
SYSTEM_REVIEWER = "korgwatch"

T = TypeVar("T")


@dataclass
class IngestSummary:
    """What one ingest did, for the CLI, the crawler's crawl_runs row and the tests."""

    listings_new: int = 0
    listings_updated: int = 0
    listings_unchanged: int = 0
    instruments_new: int = 0
    duplicate_sales: int = 0
    reposts: int = 0
    flags_raised: int = 0
    batches_failed: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # records stored with a change ("line 3: seller: clipped ...")
    lines_done: int = 0  # ingest_jsonl: every line up to this one is stored or reported (the resume point)
    interrupted: bool = False  # ingest_jsonl stopped early on request

    def add(self, other: IngestSummary) -> None:
        for name in (
            "listings_new",
            "listings_updated",
            "listings_unchanged",
            "instruments_new",
            "duplicate_sales",
            "reposts",
            "flags_raised",
            "batches_failed",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.notes.extend(other.notes)

    @property
    def listings_stored(self) -> int:
        return self.listings_new + self.listings_updated + self.listings_unchanged

    def to_dict(self) -> dict[str, Any]:
        return {
            "listings_new": self.listings_new,
            "listings_updated": self.listings_updated,
            "listings_unchanged": self.listings_unchanged,
            "instruments_new": self.instruments_new,
            "duplicate_sales": self.duplicate_sales,
            "reposts": self.reposts,
            "flags_raised": self.flags_raised,
            "batches_failed": self.batches_failed,
            "errors": list(self.errors),
        }


def utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ensure_sources(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Source ids by name, creating the missing ones (safe against a concurrent writer doing the same)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    found = dict(session.execute(select(Source.name, Source.id).where(Source.name.in_(wanted))).all())
    missing = [n for n in wanted if n not in found]
    if missing:
        session.execute(insert_ignore(session, Source.__table__, ["name"]), [{"name": n} for n in missing])
        found.update(session.execute(select(Source.name, Source.id).where(Source.name.in_(missing))).all())
    return found


def ensure_instruments(
    session: Session,
    pairs: Iterable[tuple[str, str]],
    created: set[int] | None = None,
    split: set[tuple[str, str]] | None = None,
) -> dict[tuple[str, str], int]:
    """Unit 1's instrument id by (model, serial), creating the missing ones; the unique key settles races.

    `created` (if given) receives the ids this transaction created: nobody else can have sighted those yet.
    `split` (if given) receives the pairs a reviewer split into further units; `pick_unit` routes sightings
    to those, and only by a reviewer's decision do they exist.
    """
    wanted = sorted(set(pairs))
    ids: dict[tuple[str, str], int] = {}
    for chunk in _chunks(wanted):
        ids.update(_select_instruments(session, chunk, split))
    missing = [p for p in wanted if p not in ids]
    if not missing:
        return ids
    params = [{"model": m, "serial": s, "unit": 1} for m, s in missing]
    if session.get_bind().dialect.name == "sqlite":
        # BEGIN IMMEDIATE (db.engine) holds the write lock since the look-up above, so no other writer can
        # have created any of them; if one somehow did, the unique key fails the batch and it is retried.
        new_ids = bulk_insert_ids(session, Instrument.__table__, params)
        if new_ids is not None:
            inserted = dict(zip(missing, new_ids, strict=True))
        else:  # ids near 2**63: SQLite picked them at random
            inserted = {p: i for chunk in _chunks(missing) for p, i in _select_instruments(session, chunk).items()}
    else:
        # PostgreSQL: RETURNING names only the rows this writer inserted, not those a concurrent one got in first.
        returning = (Instrument.id, Instrument.model, Instrument.serial)
        rows = insert_ignore_returning(session, Instrument.__table__, ["model", "serial", "unit"], params, returning)
        inserted = {(m, s): i for i, m, s in rows}
    ids.update(inserted)
    if created is not None:
        created.update(inserted.values())
    lost = [p for p in missing if p not in inserted]  # another writer created them first
    for chunk in _chunks(lost):
        ids.update(_select_instruments(session, chunk))
    return ids


def _select_instruments(
    session: Session, pairs: Sequence[tuple[str, str]], split: set[tuple[str, str]] | None = None
) -> dict[tuple[str, str], int]:
    # By serial (indexed), then the models in Python; every unit comes back, so split serials show up too.
    wanted = set(pairs)
    serials = sorted({serial for _, serial in pairs})
    rows = session.execute(
        select(Instrument.model, Instrument.serial, Instrument.unit, Instrument.id).where(
            one_of(session, Instrument.serial, serials)
        )
    )
    found: dict[tuple[str, str], int] = {}
    for model, serial, unit, iid in rows:
        if (model, serial) not in wanted:
            continue
        if unit == 1:
            found[(model, serial)] = iid
        elif split is not None:
            split.add((model, serial))
    return found


@dataclass
class _UnitEvidence:
    """What a new listing may share with one unit's earlier sightings."""

    instrument_id: int
    unit: int
    sellers: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)


def unit_evidence(
    session: Session, pairs: Iterable[tuple[str, str]], split: set[tuple[str, str]] | None = None
) -> dict[tuple[str, str], list[_UnitEvidence]]:
    """For the serials among `pairs` that a reviewer split into units: each unit's sellers and photos.

    `split`, when the caller already knows which pairs are split (`ensure_instruments` tells it), saves a look-up.
    """
    wanted = set(pairs)
    if split is None:
        split = set()
        for serials in _chunks(sorted({serial for _, serial in wanted})):
            for model, serial in session.execute(
                select(Instrument.model, Instrument.serial).where(
                    one_of(session, Instrument.serial, serials), Instrument.unit > 1
                )
            ):
                if (model, serial) in wanted:
                    split.add((model, serial))
    split = split & wanted
    if not split:
        return {}
    units: dict[tuple[str, str], list[_UnitEvidence]] = defaultdict(list)
    by_id: dict[int, _UnitEvidence] = {}
    for serials in _chunks(sorted({serial for _, serial in split})):
        for iid, model, serial, unit in session.execute(
            select(Instrument.id, Instrument.model, Instrument.serial, Instrument.unit)
            .where(one_of(session, Instrument.serial, serials))
            .order_by(Instrument.unit)
        ):
            if (model, serial) in split:
                by_id[iid] = evidence = _UnitEvidence(iid, unit)
                units[(model, serial)].append(evidence)
    for ids in _chunks(sorted(by_id)):
        for iid, seller, images in session.execute(
            select(Appearance.instrument_id, Listing.seller, Listing.images)
            .join(Listing, Listing.id == Appearance.listing_id)
            .where(one_of(session, Appearance.instrument_id, ids), Appearance.status != "dismissed")
        ):
            if seller and seller.strip():
                by_id[iid].sellers.add(seller.strip().casefold())
            by_id[iid].images.update(images or ())
    return dict(units)


def pick_unit(units: list[_UnitEvidence], seller: str | None, images: Iterable[str], default: int) -> int:
    """The instrument a new sighting of a split serial belongs to (the rule in this module's docstring)."""
    photos = set(images)
    by_photo = [u for u in units if u.images & photos]
    if by_photo:
        return by_photo[0].instrument_id if len(by_photo) == 1 else default
    who = seller.strip().casefold() if seller and seller.strip() else None
    by_seller = [u for u in units if who and who in u.sellers]
    return by_seller[0].instrument_id if len(by_seller) == 1 else default


# --- classification ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Sighting:
    """One appearance as the classifier sees it: when, by whom, with which photos."""

    instrument_id: int
    listing_id: int
    seen_at: datetime
    seller: str | None
    images: frozenset[str]
    url: str
    kind: str | None = None
    kind_locked: bool = False
    id: int | None = None  # None for an appearance about to be inserted
    evidence: dict[str, Any] | None = None  # why a planned sighting got its kind (db.photo_matching)


def _same_seller(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().casefold() == b.strip().casefold())


def classify(
    sightings: list[Sighting],
    register_urls: set[str] | None,
    window: timedelta,
    photos: PhotoMatcher | None = None,
) -> list[str]:
    """The kind of each sighting of ONE instrument, given in order (oldest first).

    `register_urls` is None when the register does not know the serial, else the URLs it cites: a listing the
    register itself cites is the register's own first sighting, so it stays `new`. `photos` adds the photo
    rule: a near-identical kept photo shared with ANY earlier sighting makes a `repost` (db.photo_matching).
    """
    kinds: list[str] = []
    previous: Sighting | None = None
    for sighting in sightings:
        evidence = None
        if sighting.kind_locked and sighting.kind:
            kind = sighting.kind
        elif previous is None:
            known = register_urls is not None and sighting.url not in register_urls
            kind = "duplicate_sale" if known else "new"
        elif (photos is not None and (evidence := photos.earlier_match(sighting)) is not None) or (
            _same_seller(sighting.seller, previous.seller) and abs(sighting.seen_at - previous.seen_at) <= window
        ) or (sighting.images & previous.images):
            kind = "repost"
        else:
            kind = "duplicate_sale"
        if photos is not None and previous is not None and not sighting.kind_locked:
            sighting.evidence = evidence
            photos.settle(sighting, evidence)
        kinds.append(kind)
        previous = sighting
    return kinds


def _sort_key(s: Sighting) -> tuple[datetime, int, int]:
    # Existing rows keep their id order; new ones go after existing ones at the same instant.
    return (s.seen_at, 0 if s.id is not None else 1, s.id or s.listing_id)


def plan_kinds(
    session: Session,
    instrument_ids: Iterable[int],
    planned: list[Sighting],
    window: timedelta,
    fresh: dict[int, tuple[str, str]] | None = None,
    known: dict[int, tuple[str, str]] | None = None,
    rewritten: Iterable[int] = (),
) -> list[tuple[int, str]]:
    """Set `kind` on the planned sightings and return the (appearance id, kind) changes to existing rows.

    Locks the instruments' rows first on PostgreSQL, so two writers classifying the same serial take turns;
    the partial unique index (one `new` per instrument) is the backstop on every backend. `fresh` maps the
    instruments this transaction just created to their (model, serial): they have no sightings to load.
    `known` maps other instruments to their (model, serial) when the caller has them: SQLite (whose write lock
    is already held) then need not read those rows again. `rewritten` names instruments whose stored
    sightings this transaction changed (deleted ones): they are classified again from their whole history.

    `classify` compares a sighting only with the one before it, so an instrument whose planned sightings all
    come after its latest stored one needs that one sighting, read through the (instrument_id, seen_at)
    index, and no stored kind can change: the store's size does not matter. Only an instrument with a planned
    sighting landing before or among its stored ones (an old archive ingested late, a re-analysis) or with
    rewritten history is read in full and classified again from its first sighting.
    """
    fresh = fresh or {}
    ids = sorted(set(instrument_ids) - set(fresh))
    if not ids and not fresh:
        return []
    models_serials: dict[int, tuple[str, str]] = dict(fresh)
    _read_instruments(session, ids, known, models_serials)
    planned_by: dict[int, list[Sighting]] = defaultdict(list)
    for sighting in planned:
        planned_by[sighting.instrument_id].append(sighting)
    for sightings in planned_by.values():
        sightings.sort(key=_sort_key)
    whole = {iid for iid in ids if iid not in planned_by} | (set(rewritten) & set(ids))
    bounded = [iid for iid in ids if iid not in whole]
    latest = latest_sightings(session, bounded)
    # A planned sighting at or after the latest stored one's time goes after it (_sort_key); else: in full.
    whole.update(iid for iid, last in latest.items() if planned_by[iid][0].seen_at < last.seen_at)
    history = stored_sightings(session, sorted(whole))
    # The register matters only where a sighting is the first one classify sees.
    firsts = [iid for iid in (*fresh, *ids) if iid in whole or iid not in latest]
    register = register_urls(session, {models_serials[iid] for iid in firsts if iid in models_serials})
    photos = PhotoMatcher.load(session, sorted(whole), planned, _sort_key)

    changes: list[tuple[int, str]] = []
    for iid in firsts:
        pair = models_serials.get(iid)
        urls = register.get(pair) if pair else None
        sightings = history.get(iid, []) + planned_by.get(iid, [])
        if len(sightings) == 1 and sightings[0].id is None:  # a first sighting (classify's first case)
            only = sightings[0]
            only.kind = "duplicate_sale" if urls is not None and only.url not in urls else "new"
            continue
        sightings.sort(key=_sort_key)
        for sighting, kind in zip(sightings, classify(sightings, urls, window, photos), strict=True):
            if sighting.id is None:
                sighting.kind = kind
            elif sighting.kind != kind:
                changes.append((sighting.id, kind))
    for iid, last in latest.items():
        if iid in whole:
            continue
        sightings = [last, *planned_by[iid]]
        for sighting, kind in zip(sightings[1:], classify(sightings, None, window, photos)[1:], strict=True):
            sighting.kind = kind
    photos.write_evidence(session)
    return changes


def _read_instruments(
    session: Session, ids: list[int], known: dict[int, tuple[str, str]] | None, into: dict[int, tuple[str, str]]
) -> None:
    """(model, serial) of each instrument into `into`; on PostgreSQL the rows are locked (FOR UPDATE) too."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    for chunk in _chunks(ids):
        if postgresql or known is None or any(iid not in known for iid in chunk):
            stmt = select(Instrument.id, Instrument.model, Instrument.serial).where(
                one_of(session, Instrument.id, chunk)
            )
            if postgresql:
                stmt = stmt.order_by(Instrument.id).with_for_update()
            for iid, model, serial in session.execute(stmt):
                into[iid] = (model, serial)
        else:
            into.update((iid, known[iid]) for iid in chunk)


_SIGHTING_COLUMNS = (
    Appearance.id,
    Appearance.instrument_id,
    Appearance.listing_id,
    Appearance.seen_at,
    Appearance.kind,
    Appearance.kind_locked,
    Listing.seller,
    Listing.images,
    Listing.url,
)


def _sightings(rows: Iterable[Any]) -> Iterator[Sighting]:
    for aid, iid, lid, seen_at, kind, locked, seller, images, url in rows:
        yield Sighting(iid, lid, seen_at, seller, frozenset(images or ()), url, kind, locked, aid)


def stored_sightings(session: Session, instrument_ids: Sequence[int]) -> dict[int, list[Sighting]]:
    """Every stored sighting (not dismissed) of these instruments: the whole history, for a full classification."""
    found: dict[int, list[Sighting]] = defaultdict(list)
    for chunk in _chunks(instrument_ids):
        rows = session.execute(
            select(*_SIGHTING_COLUMNS)
            .join(Listing, Listing.id == Appearance.listing_id)
            .where(one_of(session, Appearance.instrument_id, chunk), Appearance.status != "dismissed")
        )
        for sighting in _sightings(rows):
            found[sighting.instrument_id].append(sighting)
    return found


def latest_sightings(session: Session, instrument_ids: Sequence[int]) -> dict[int, Sighting]:
    """Each instrument's latest stored sighting (not dismissed; by time, then id), if it has one."""
    found: dict[int, Sighting] = {}
    for chunk in _chunks(instrument_ids):
        rows = session.execute(latest_sightings_statement(session, chunk))
        found.update((sighting.instrument_id, sighting) for sighting in _sightings(rows))
    return found


def latest_sightings_statement(session: Session, instrument_ids: Sequence[int]) -> Select[Any]:
    """The look-up behind `latest_sightings`: one indexed step per instrument (ix_appearances_instrument_id_seen_at,
    read backwards), whatever the length of its history."""
    latest_id = (
        select(Appearance.id)
        .where(Appearance.instrument_id == Instrument.id, Appearance.status != "dismissed")
        .order_by(Appearance.seen_at.desc(), Appearance.id.desc())
        .limit(1)
        .correlate(Instrument)
        .scalar_subquery()
    )
    wanted = select(latest_id).where(one_of(session, Instrument.id, instrument_ids))
    columns: tuple[Any, ...] = _SIGHTING_COLUMNS
    return select(*columns).join(Listing, Listing.id == Appearance.listing_id).where(Appearance.id.in_(wanted))


def register_urls(session: Session, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """The URLs the register cites for each (model, serial) it knows, among `pairs`."""
    register: dict[tuple[str, str], set[str]] = defaultdict(set)
    for serials in _chunks(sorted({serial for _, serial in pairs})):
        for model, serial, url in session.execute(
            select(RegisterEntry.model, RegisterEntry.serial, RegisterEntry.url).where(
                one_of(session, RegisterEntry.serial, serials)
            )
        ):
            if (model, serial) in pairs:
                register[(model, serial)].add(url)
    return register


def apply_kind_changes(
    session: Session, changes: list[tuple[int, str]], between: Callable[[], None] | None = None
) -> None:
    """Write kind changes away from `new` before those towards it, so the one-`new` index never trips."""
    away = [{"id": i, "kind": k} for i, k in changes if k != "new"]
    towards = [{"id": i, "kind": k} for i, k in changes if k == "new"]
    if away:
        session.execute(update(Appearance), away)
    if between is not None:
        between()
    if towards:
        session.execute(update(Appearance), towards)


def reclassify_instruments(session: Session, instrument_ids: Iterable[int], window: timedelta) -> int:
    """Recompute the kinds of every appearance of these instruments (after a register import or a review)."""
    changes = plan_kinds(session, instrument_ids, [], window)
    apply_kind_changes(session, changes)
    return len(changes)


# --- ingest -----------------------------------------------------------------------------------------


@dataclass
class _Analysed:
    listing_id: int
    record: StoredRecord
    seen_at: datetime
    findings: Findings
    label: str
    existed: bool  # False for a listing inserted by this batch: it has no appearances or flags yet


def default_analyser() -> Analyser:
    from pipeline.analyse import analyse_listing  # imported late: the analyser is the heavy part

    return analyse_listing


def ingest_records(
    session: Session,
    records: Iterable[Any],
    rules: Rules,
    *,
    repost_window: timedelta = DEFAULT_REPOST_WINDOW,
    now: datetime | None = None,
    analyser: Analyser | None = None,
    photos: Mapping[ListingKey, Sequence[FetchedPhoto]] | None = None,
) -> IngestSummary:
    """Store a batch of listings (ListingRecord objects or their dicts) and classify what they show.

    Idempotent: a listing seen again only moves `last_seen`; changed text keeps the old text as a revision
    and is analysed again, updating (never duplicating) its appearances. Bad records are reported in
    `errors` ("record 3: no title") and skipped. Never commits.
    """
    summary = IngestSummary()
    good: list[tuple[str, StoredRecord]] = []
    for number, record in enumerate(records, 1):
        try:
            good.append((f"record {number}", normalise_record(record)))
        except RecordError as exc:
            summary.errors.append(f"record {number}: {exc}")
    summary.add(
        ingest_stored(session, good, rules, repost_window=repost_window, now=now, analyser=analyser, photos=photos)
    )
    return summary


def ingest_stored(
    session: Session,
    labelled: Sequence[tuple[str, StoredRecord]],
    rules: Rules,
    *,
    repost_window: timedelta = DEFAULT_REPOST_WINDOW,
    now: datetime | None = None,
    analyser: Analyser | None = None,
    photos: Mapping[ListingKey, Sequence[FetchedPhoto]] | None = None,
) -> IngestSummary:
    """`ingest_records` for records already validated; each carries a label for its error messages.

    `photos` (from the crawl, by (source, external id)) are stored before classification reads them."""
    summary = IngestSummary()
    now = now or utcnow()
    analyse = analyser or default_analyser()
    summary.notes.extend(f"{label}: {note}; stored" for label, record in labelled for note in record.notes)
    # The same listing twice in one batch: the later copy wins.
    latest: dict[tuple[str, str], tuple[str, StoredRecord]] = {}
    for label, record in labelled:
        latest[(record.source, record.external_id)] = (label, record)
    if not latest:
        return summary
    source_ids = ensure_sources(session, (source for source, _ in latest))

    # One look-up for every source of the batch (the same external id may exist under other sources too:
    # those rows are left out here), through the (source_id, external_id) unique index.
    existing: dict[tuple[int, str], Any] = {}
    wanted = {(source_ids[source], external_id) for source, external_id in latest}
    for chunk in _chunks(sorted({external_id for _, external_id in latest})):
        for found in session.execute(
            select(
                Listing.id,
                Listing.source_id,
                Listing.external_id,
                Listing.content_hash,
                Listing.record_hash,
                Listing.title,
                Listing.body,
                Listing.first_seen,
            ).where(
                one_of(session, Listing.source_id, sorted(set(source_ids.values()))),
                one_of(session, Listing.external_id, chunk),
            )
        ):
            if (found.source_id, found.external_id) in wanted:
                existing[(found.source_id, found.external_id)] = found

    new_rows: list[dict[str, Any]] = []
    new_records: list[tuple[str, StoredRecord]] = []
    touched: list[int] = []
    updates: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    to_analyse: list[tuple[int, str, StoredRecord, datetime, bool]] = []
    for (source, external_id), (label, record) in latest.items():
        source_id = source_ids[source]
        row = existing.get((source_id, external_id))
        if row is not None and row.record_hash == record.record_hash:
            touched.append(row.id)
            summary.listings_unchanged += 1
            continue
        values = _listing_values(record, now)
        if row is None:
            values["source_id"] = source_id
            values["external_id"] = external_id
            values["first_seen"] = now
            new_rows.append(values)
            new_records.append((label, record))
            continue
        values["id"] = row.id
        updates.append(values)
        summary.listings_updated += 1
        if row.content_hash != record.content_hash:
            revisions.append(
                {
                    "listing_id": row.id,
                    "title": row.title,
                    "body": row.body,
                    "content_hash": row.content_hash,
                    "replaced_at": now,
                }
            )
            to_analyse.append((row.id, label, record, record.posted_at or row.first_seen, True))

    bulk_update(session, Listing.__table__, "id", [{"id": i, "last_seen": now} for i in touched])
    if updates:
        session.execute(update(Listing), updates)
    if revisions:
        bulk_insert(session, ListingRevision.__table__, revisions)
    if new_rows:
        ids = _insert_listings(session, new_rows)
        for listing_id, (label, record) in zip(ids, new_records, strict=True):
            to_analyse.append((listing_id, label, record, record.posted_at or now, False))
        summary.listings_new += len(new_rows)
    if photos:
        store_listing_photos(session, photos, now)

    analysed: list[_Analysed] = []
    cuts: list[dict[str, Any]] = []
    for listing_id, label, record, seen_at, existed in to_analyse:
        result = analyse_findings(analyse, record.title, record.body, rules)
        if isinstance(result, str):
            summary.errors.append(f"{label}: {result}; listing stored")
            continue
        if result.cut or existed:  # a changed text may no longer be cut
            cuts.append({"id": listing_id, "analysis_cut": list(result.cut) or None})
            summary.notes.extend(f"{label}: {cut} by the analyser; stored in full" for cut in result.cut)
        analysed.append(_Analysed(listing_id, record, seen_at, result.findings, label, existed))
    bulk_update(session, Listing.__table__, "id", cuts)
    if analysed:
        _store_analyses(session, analysed, summary, repost_window, now)
    return summary


def _span(instrument: FoundInstrument) -> dict[str, Any]:
    """Where an appearance's serial stood in the listing, and the blocks it fits."""
    return {
        "serial_raw": instrument.serial_raw,
        "serial_field": instrument.serial_field,
        "serial_start": instrument.serial_start,
        "serial_end": instrument.serial_end,
        "fits": list(instrument.fits),
    }


def _listing_values(record: StoredRecord, now: datetime) -> dict[str, Any]:
    """The listing columns a crawl sets (all but its key and first-seen time)."""
    return {
        "url": record.url,
        "title": record.title,
        "body": record.body,
        "seller": record.seller,
        "price": record.price,
        "currency": record.currency,
        "posted_at": record.posted_at,
        "images": list(record.images),
        "extra": record.extra,
        "content_hash": record.content_hash,
        "record_hash": record.record_hash,
        "last_seen": now,
    }


def _insert_listings(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new listings; their ids in row order."""
    ids = bulk_insert_ids(session, Listing.__table__, rows)
    if ids is not None:
        return ids
    found: dict[tuple[int, str], int] = {}
    by_source: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        by_source[row["source_id"]].append(row["external_id"])
    for source_id, external_ids in by_source.items():
        for chunk in _chunks(external_ids):
            for listing_id, external_id in session.execute(
                select(Listing.id, Listing.external_id).where(
                    Listing.source_id == source_id, one_of(session, Listing.external_id, chunk)
                )
            ):
                found[(source_id, external_id)] = listing_id
    return [found[(row["source_id"], row["external_id"])] for row in rows]


def _store_analyses(
    session: Session, analysed: list[_Analysed], summary: IngestSummary, window: timedelta, now: datetime
) -> None:
    """Turn analyses into appearances and flags, updating the rows of re-analysed listings in place."""
    pairs = {(i.model, i.serial) for a in analysed for i in a.findings if i.serial}
    created: set[int] = set()
    split: set[tuple[str, str]] = set()
    instrument_ids = ensure_instruments(session, pairs, created, split)
    fresh = {iid: pair for pair, iid in instrument_ids.items() if iid in created}
    known = {iid: pair for pair, iid in instrument_ids.items() if iid not in created}
    split_units = unit_evidence(session, split, split)
    known.update((unit.instrument_id, pair) for pair, units in split_units.items() for unit in units)

    listing_ids = [a.listing_id for a in analysed if a.existed]
    old_apps: dict[tuple[int, str, str], Any] = {}
    old_flags: dict[int, list[Any]] = defaultdict(list)
    for chunk in _chunks(listing_ids):
        for row in session.execute(
            select(
                Appearance.id,
                Appearance.listing_id,
                Appearance.instrument_id,
                Appearance.detected_model,
                Appearance.detected_serial,
                Appearance.reviewed_at,
            ).where(one_of(session, Appearance.listing_id, chunk))
        ):
            old_apps[(row.listing_id, row.detected_model, row.detected_serial)] = row
        for flag_row in session.execute(
            select(Flag.id, Flag.listing_id, Flag.appearance_id, Flag.code).where(
                one_of(session, Flag.listing_id, chunk), Flag.status == "open"
            )
        ):
            old_flags[flag_row.listing_id].append(flag_row)

    reused = photo_reused_flags(
        session,
        [BatchSighting(a.listing_id, i.model, i.serial, a.seen_at) for a in analysed for i in a.findings if i.serial],
    )
    planned: list[tuple[Sighting, dict[str, Any]]] = []
    app_updates: list[dict[str, Any]] = []
    keep_apps: set[int] = set()
    # (listing_id, appearance key or None, flag) for every flag the analyses raise
    wanted_flags: list[tuple[int, tuple[int, str, str] | None, Any]] = []
    for item in analysed:
        seen: set[tuple[str, str]] = set()
        record = item.record
        photos = frozenset(record.images)
        for instrument in item.findings:
            if not instrument.serial:
                wanted_flags.extend((item.listing_id, None, flag) for flag in instrument.flags)
                continue
            if (instrument.model, instrument.serial) in seen:
                continue
            seen.add((instrument.model, instrument.serial))
            key = (item.listing_id, instrument.model, instrument.serial)
            flags = [*instrument.flags, *reused.get(key, ())]
            status = "pending" if flags else "counted"
            old = old_apps.get(key)
            if old is not None:
                keep_apps.add(old.id)
                update_row = {"id": old.id, **_span(instrument)}
                if old.reviewed_at is None:
                    update_row["status"] = status
                    wanted_flags.extend((item.listing_id, key, flag) for flag in flags)
                app_updates.append(update_row)
                continue
            wanted_flags.extend((item.listing_id, key, flag) for flag in flags)
            iid = instrument_ids[(instrument.model, instrument.serial)]
            units = split_units.get((instrument.model, instrument.serial))
            if units:
                iid = pick_unit(units, record.seller, record.images, iid)
            sighting = Sighting(iid, item.listing_id, item.seen_at, record.seller, photos, record.url)
            new_app = {
                "listing_id": item.listing_id,
                "instrument_id": iid,
                "detected_model": instrument.model,
                "detected_serial": instrument.serial,
                "kind_locked": False,
                "status": status,
                "seen_at": item.seen_at,
                "created_at": now,
                **_span(instrument),
            }
            planned.append((sighting, new_app))

    # Appearances the new text no longer shows go, unless a reviewer already decided on them.
    gone = [row for row in old_apps.values() if row.id not in keep_apps and row.reviewed_at is None]
    affected = {s.instrument_id for s, _ in planned} | {row.instrument_id for row in gone}
    for chunk in _chunks([row.id for row in gone]):
        session.execute(delete(Flag).where(one_of(session, Flag.appearance_id, chunk)))
        session.execute(delete(Appearance).where(one_of(session, Appearance.id, chunk)))
    if app_updates:
        session.execute(update(Appearance), app_updates)

    # Re-analysed listings' sightings (deleted, or kept with the listing's new seller and photos) may change
    # the kinds around them: their instruments are classified again, from their whole history.
    rewritten = {row.instrument_id for row in old_apps.values()}
    changes = plan_kinds(session, affected | rewritten, [s for s, _ in planned], window, fresh, known, rewritten)
    inserted: dict[tuple[int, str, str], int] = {}

    def insert_planned() -> None:
        if not planned:
            return
        rows = [{**row, "kind": sighting.kind, "kind_evidence": sighting.evidence} for sighting, row in planned]
        ids = bulk_insert_ids(session, Appearance.__table__, rows)
        if ids is not None:
            for row, app_id in zip(rows, ids, strict=True):
                inserted[(row["listing_id"], row["detected_model"], row["detected_serial"])] = app_id
        else:  # ids are needed only where flags must point at the new appearances
            flagged = sorted({key[0] for _, key, _ in wanted_flags if key is not None})
            for chunk in _chunks(flagged):
                for app_id, listing_id, model, serial in session.execute(
                    select(
                        Appearance.id,
                        Appearance.listing_id,
                        Appearance.detected_model,
                        Appearance.detected_serial,
                    ).where(one_of(session, Appearance.listing_id, chunk))
                ):
                    inserted[(listing_id, model, serial)] = app_id
        for row in rows:
            if row["kind"] == "new":
                summary.instruments_new += 1
            elif row["kind"] == "repost":
                summary.reposts += 1
            else:
                summary.duplicate_sales += 1

    apply_kind_changes(session, changes, between=insert_planned)

    # Flags: keep an open flag the new analysis raises again, retire the ones it no longer raises.
    app_ids = {key: row.id for key, row in old_apps.items()} | inserted
    gone_ids = {row.id for row in gone}
    new_flags: list[dict[str, Any]] = []
    kept: set[int] = set()
    for listing_id, flag_key, flag in wanted_flags:
        app_id = app_ids.get(flag_key) if flag_key else None
        match = next(
            (
                f
                for f in old_flags.get(listing_id, ())
                if f.appearance_id == app_id and f.code == flag.code and f.id not in kept
            ),
            None,
        )
        if match is not None:
            kept.add(match.id)
            session.execute(update(Flag).where(Flag.id == match.id).values(details=flag.details))
            continue
        new_flags.append(
            {
                "listing_id": listing_id,
                "appearance_id": app_id,
                "code": flag.code,
                "details": flag.details,
                "status": "open",
                "created_at": now,
            }
        )
    retired = [
        {
            "id": f.id,
            "status": "dismissed",
            "reviewer": SYSTEM_REVIEWER,
            "decided_at": now,
            "note": "superseded: the listing's text changed",
        }
        for flags in old_flags.values()
        for f in flags
        if f.id not in kept and f.appearance_id not in gone_ids
    ]
    if retired:
        session.execute(update(Flag), retired)
    if new_flags:
        bulk_insert(session, Flag.__table__, new_flags)
        summary.flags_raised += len(new_flags)


# --- refused records, isolated ------------------------------------------------------------------------


def db_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection: worth waiting for, not the data's fault."""
    if isinstance(exc, IntegrityError) or not isinstance(exc, SQLAlchemyError):
        return False
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


@dataclass
class Isolated(Generic[T]):
    """What `store_isolating` did with a batch: the stored parts' summary, the items the database refused (each
    with its reason), and the items not tried because the database became unavailable (with why)."""

    summary: IngestSummary = field(default_factory=IngestSummary)
    refused: list[tuple[T, str]] = field(default_factory=list)
    unstored: list[T] = field(default_factory=list)
    unavailable: str | None = None


def store_isolating(
    engine: Engine, items: Sequence[T], store: Callable[[Session, Sequence[T]], IngestSummary]
) -> Isolated[T]:
    """Store `items` in one transaction; if the database refuses it, halve and retry until each refused item
    stands alone, so one bad record costs itself, not its batch.

    A unique-key clash is retried once first (a concurrent writer got there: the retry sees its rows). A value
    the driver cannot send (ValueError) counts as a refusal. An unavailable database stops the work: what is
    left is returned in `unstored`, for the caller to wait for or report.
    """
    result: Isolated[T] = Isolated()
    parts: list[Sequence[T]] = [items]  # a stack: the first half is tried first, so the order is kept
    while parts:
        part = parts.pop()
        if not part:
            continue
        for attempt in (1, 2):
            try:
                with session_scope(engine) as session:
                    stored = store(session, part)
            except (SQLAlchemyError, ValueError) as exc:
                if db_unavailable(exc):
                    result.unstored = [item for rest in (part, *reversed(parts)) for item in rest]
                    result.unavailable = short_error(exc)
                    return result
                if isinstance(exc, IntegrityError) and attempt == 1:
                    continue
                if len(part) == 1:
                    result.refused.append((part[0], short_error(exc)))
                else:
                    middle = len(part) // 2
                    parts += [part[middle:], part[:middle]]
                break
            result.summary.add(stored)
            break
    return result


# --- JSON Lines -------------------------------------------------------------------------------------


def _open_lines(source: str | Path | IO[bytes] | IO[str]) -> tuple[IO[bytes] | IO[str], bool]:
    if isinstance(source, str | Path):
        return open(source, "rb"), True
    return source, False


def _read_jsonl(
    stream: IO[bytes] | IO[str], summary: IngestSummary, default_source: str | None, skip: int
) -> Iterator[tuple[int, StoredRecord | None]]:
    """(line number, record) per non-blank line; a bad line is reported in `summary.errors` and gives None."""
    for number, raw in numbered_lines(stream, skip):
        try:
            data = read_json_line(raw, number, exact_numbers=True)
            if default_source and isinstance(data, dict) and not data.get("source"):
                data["source"] = default_source
            yield number, normalise_record(data)
        except (LineError, RecordError) as exc:
            summary.errors.append(f"line {number}: {exc}")
            yield number, None


def ingest_jsonl(
    source: str | Path | IO[bytes] | IO[str],
    engine: Engine,
    rules: Rules,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    repost_window: timedelta = DEFAULT_REPOST_WINDOW,
    now: datetime | None = None,
    analyser: Analyser | None = None,
    ingest: Callable[..., IngestSummary] = ingest_stored,
    default_source: str | None = None,
    skip: int = 0,
    progress: Callable[[IngestSummary], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> IngestSummary:
    """Ingest a JSON Lines file (or a binary stream such as stdin's buffer), one transaction per `batch_size`
    good records.

    Each line is decoded and parsed on its own: a bad line is reported by number and skipped. A batch the
    database refuses is split until the refused records are found (`store_isolating`); they are reported by
    line and the rest is stored. A batch lost because the database is unavailable is reported with its line
    range. `default_source` fills in records without a source; `skip` passes over the first lines (a resume
    point); `progress` is called after each batch; `stop` is asked after each batch, and when it says so the
    ingest ends there (`interrupted`; `lines_done` is the resume point).
    """
    summary = IngestSummary(lines_done=skip)
    stream, close = _open_lines(source)
    stopping = stop or (lambda: False)
    try:
        batch: list[tuple[str, StoredRecord]] = []
        read = skip
        for read, record in _read_jsonl(stream, summary, default_source, skip):
            if record is not None:
                batch.append((f"line {read}", record))
            stopped = stopping()
            if len(batch) >= batch_size or stopped:
                if batch:
                    _flush(batch, engine, rules, summary, repost_window, now, analyser, ingest)
                batch = []
                summary.lines_done = read
                if progress is not None:
                    progress(summary)
                if stopped:
                    summary.interrupted = True
                    return summary
        if batch:
            _flush(batch, engine, rules, summary, repost_window, now, analyser, ingest)
        summary.lines_done = read
        if progress is not None:
            progress(summary)
    finally:
        if close:
            stream.close()
    return summary


def _flush(
    batch: list[tuple[str, StoredRecord]],
    engine: Engine,
    rules: Rules,
    summary: IngestSummary,
    window: timedelta,
    now: datetime | None,
    analyser: Analyser | None,
    ingest: Callable[..., IngestSummary],
) -> None:
    result = store_isolating(
        engine,
        batch,
        lambda session, part: ingest(session, part, rules, repost_window=window, now=now, analyser=analyser),
    )
    summary.add(result.summary)
    refused = sorted(result.refused, key=lambda item: int(item[0][0].removeprefix("line ")))
    for (label, _), reason in refused:
        summary.errors.append(f"{label}: refused by the database ({reason}); not stored")
    if result.unstored:
        first, last = result.unstored[0][0], result.unstored[-1][0].removeprefix("line ")
        where = first if len(result.unstored) == 1 else f"{first}–{last}"
        summary.batches_failed += 1
        summary.errors.append(f"{where}: database unavailable, not stored: {result.unavailable}")


def short_error(exc: BaseException) -> str:
    """A database error's first line: the driver's own message where there is one."""
    orig = getattr(exc, "orig", None)
    return (str(orig if orig is not None else exc).strip().splitlines() or [type(exc).__name__])[0]
