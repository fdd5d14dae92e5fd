"""Evidence: the raw response a listing was read from, so a reviewer can check what the source really said.

Stored gzip-compressed and content-addressed (`<root>/<sha[:2]>/<sha>.gz`, sha256 of the raw bytes): the same
page is kept once however many listings it carries, and writing it again is a no-op. Kept the first time a
listing is seen and whenever its text changes; the hash goes into the listing's `extra["evidence_sha256"]`
(the schema has no column for it). `KnownListing` is what the crawler needs to know about a listing already in
the store to decide "new", "changed" or "unchanged" before spending a request on it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.pages.records import ListingRecord

EVIDENCE_KEY = "evidence_sha256"
#: Set instead when the page could not be kept (a full disk): why, so a reviewer knows it is gone, not late.
EVIDENCE_MISSING_KEY = "evidence_missing"


def default_evidence_dir() -> Path:
    from korgwatch.paths import data_dir

    return data_dir() / "evidence"


def evidence_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / f"{sha256}.gz"


def store_evidence(root: Path, body: bytes) -> str:
    """Keep `body` under its sha256 (atomically, once) and return the hash."""
    digest = hashlib.sha256(body).hexdigest()
    path = evidence_path(root, digest)
    if path.exists():
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
            zipped.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


#: A partial evidence file older than this was left by a crawl killed mid-write (a live write takes moments).
PARTIAL_MAX_AGE = 3600.0


def clean_partial_writes(root: Path, max_age: float = PARTIAL_MAX_AGE, now: float | None = None) -> int:
    """Remove the temporary files of evidence writes that never finished (a crawl killed mid-write).

    Only files older than `max_age` go: another crawl may be writing one right now. Returns how many went.
    """
    now = time.time() if now is None else now
    removed = 0
    for partial in root.glob("*/.tmp-*"):
        try:
            if now - partial.stat().st_mtime > max_age:
                partial.unlink()
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def load_evidence(root: Path, sha256: str) -> bytes:
    """The raw bytes kept under `sha256`; FileNotFoundError if never kept."""
    return gzip.decompress(evidence_path(root, sha256).read_bytes())


@dataclass(frozen=True, slots=True)
class KnownListing:
    """The text of a listing as the store last saw it."""

    title: str
    body: str
    price: Decimal | None
    evidence_sha256: str | None = None


def _same_price(price: str | None, known: Decimal | None) -> bool:
    if price is None or known is None:
        return price is None and known is None
    try:
        return Decimal(price) == known
    except InvalidOperation:
        return False


def is_unchanged(record: ListingRecord, known: KnownListing | None, *, compare_body: bool = True) -> bool:
    """True when the store already has this listing with the same title, price (and body, if compared).

    Search summaries of sources with detail pages carry no full body, so they compare title and price only.
    """
    if known is None:
        return False
    if record.title.strip() != known.title.strip() or not _same_price(record.price, known.price):
        return False
    return not compare_body or record.body.strip() == known.body.strip()


def load_known_listings(session: Session, source: str) -> dict[str, KnownListing]:
    """Every stored listing of `source` by external id (a few thousand rows: cheap to hold for one run)."""
    from db.models import Listing, Source

    rows = session.execute(
        select(Listing.external_id, Listing.title, Listing.body, Listing.price, Listing.extra)
        .join(Source, Listing.source_id == Source.id)
        .where(Source.name == source)
    )
    known: dict[str, KnownListing] = {}
    for row in rows:
        extra = row.extra if isinstance(row.extra, dict) else {}
        evidence = extra.get(EVIDENCE_KEY)
        known[row.external_id] = KnownListing(
            row.title, row.body or "", row.price, evidence if isinstance(evidence, str) else None
        )
    return known
