"""A listing record checked and converted for storage, and the two hashes that tell what changed.

Records come from any tool or archive (`korgwatch ingest`) and from the spiders, so nothing in them is
trusted: `normalise_record` names the first bad field in a RecordError, and the caller names the line. Every
field is checked here once, the same for SQLite and PostgreSQL (docs/ingest.md has the table): what a backend
would refuse is either changed (NUL and lone surrogates replaced, over-long keys hashed, sellers clipped; the
record's `notes` say so) or refused, so that a database error is left for what no check can foresee.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

# json.dumps(value, sort_keys=True, default=str) without its per-call argument checks.
_RECORD_HASH_JSON = json.JSONEncoder(sort_keys=True, default=str).encode

MAX_SOURCE = 64  # sources.name
MAX_KEY = 255  # listings.external_id and listings.seller
MAX_CURRENCY = 8  # listings.currency
PRICE_LIMIT = Decimal(10) ** 16  # listings.price is NUMERIC(18, 2): 16 digits before the point
CENTS = Decimal("0.01")
REPLACEMENT = "\ufffd"
# NUL (PostgreSQL text refuses it) and UTF-16 surrogates on their own (no backend can encode them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class RecordError(ValueError):
    """A record that cannot be stored as it is; the message names the field."""


class StoredRecord(NamedTuple):
    """A validated record, its values already in the types the columns take, and its two hashes (made once,
    here: ingest compares them for every listing of every crawl)."""

    source: str
    url: str
    external_id: str
    title: str
    body: str
    seller: str | None
    posted_at: datetime | None
    price: Decimal | None
    currency: str | None
    images: tuple[str, ...]
    extra: dict[str, Any]
    content_hash: str  # title and body: a change needs a revision and a new analysis
    record_hash: str  # every stored field: an unchanged re-crawl is one string comparison
    notes: tuple[str, ...] = ()  # what was changed to store it ("seller: clipped to 255 characters")


def record_hash(
    url: str,
    title: str,
    body: str,
    seller: str | None,
    posted_at: datetime | None,
    price: Decimal | None,
    currency: str | None,
    images: tuple[str, ...],
    extra: dict[str, Any],
) -> str:
    """The hash of everything stored about a listing: the SHA-256 of
    `json.dumps([url, title, body, seller, posted ISO time, price "%.2f" (false if none), currency, images,
    extra], sort_keys=True, default=str)`. The formula must not change (stored hashes would move); the text is
    written out here with json's own string escaping, which costs a third of building an encoder per listing
    (tests/test_records.py holds the two equal).
    """
    esc = encode_basestring_ascii
    text = (
        f"[{esc(url)}, {esc(title)}, {esc(body)}, {'null' if seller is None else esc(seller)}, "
        f"{'null' if posted_at is None else esc(posted_at.isoformat())}, "
        f"{'false' if price is None else esc(f'{price:.2f}')}, {'null' if currency is None else esc(currency)}, "
        f"[{', '.join(map(esc, images))}], {_RECORD_HASH_JSON(extra) if extra else '{}'}]"
    )
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(title: str, body: str) -> str:
    """What decides whether the text changed (and so needs a revision and a new analysis)."""
    return hashlib.sha256(f"{title}\x00{body}".encode()).hexdigest()


def parse_datetime(value: str) -> datetime:
    """ISO-8601 to aware UTC; a time without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.strip())  # Python 3.11 reads a trailing "Z" too
    if parsed.tzinfo is UTC:
        return parsed
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def storable_text(value: str) -> str:
    """The text with NUL and lone surrogates replaced by U+FFFD: what every backend can store."""
    if "\x00" not in value and (value.isascii() or not _UNSTORABLE.search(value)):
        return value
    return _UNSTORABLE.sub(REPLACEMENT, value)


class _Notes(list[str]):
    """What normalising changed, one note per field."""

    def text(self, name: str, value: str) -> str:
        clean = storable_text(value)
        if clean is not value:
            self.append(f"{name}: NUL or lone surrogate replaced by U+FFFD")
        return clean


def _optional_str(data: dict[str, Any], name: str, notes: _Notes) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{name} must be a string, not {type(value).__name__}")
    return notes.text(name, value)


def _price(value: Any, notes: _Notes) -> Decimal | None:
    """A price exactly as written (a string, a JSON number read as Decimal), in cents; never via a float
    unless the caller already made one."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise RecordError(f"price must be a decimal string, not {type(value).__name__}")
    try:
        price = value if isinstance(value, Decimal) else Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise RecordError(f"price is not a number: {str(value)[:40]!r}") from None
    if not price.is_finite():
        raise RecordError(f"price is not a number: {str(value)[:40]!r}")
    if abs(price) >= PRICE_LIMIT:
        raise RecordError(f"price out of range (10^16 or more): {str(value)[:40]!r}")
    cents = price.quantize(CENTS, rounding=ROUND_HALF_EVEN)
    if cents != price:
        notes.append(f"price: {price} rounded to {cents}")
    return cents


def _images(value: Any, notes: _Notes) -> tuple[str, ...]:
    if not value:
        return ()
    if not isinstance(value, list | tuple):
        raise RecordError("images must be a list of URL strings")
    for image in value:
        if not isinstance(image, str):
            raise RecordError("images must be a list of URL strings")
    return tuple(dict.fromkeys(notes.text("images", image) for image in value))


def _storable_json(value: Any, notes: _Notes) -> Any:
    """`extra` with its text made storable and exact numbers (Decimal) back to JSON floats."""
    if isinstance(value, str):
        return notes.text("extra", value)
    if isinstance(value, dict):
        return {notes.text("extra", str(k)): _storable_json(v, notes) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_json(v, notes) for v in value]
    if isinstance(value, Decimal):
        number = float(value)
        if number in (float("inf"), float("-inf")) or number != number:
            raise RecordError(f"extra: number out of range: {str(value)[:40]}")
        return number
    if isinstance(value, float) and (value in (float("inf"), float("-inf")) or value != value):
        raise RecordError(f"extra: number out of range: {value}")
    return value


def _key(value: str, notes: _Notes) -> str:
    if len(value) <= MAX_KEY:
        return value
    notes.append(f"external_id: {len(value)} characters, stored as sha256: and its SHA-256")
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def normalise_record(record: Any) -> StoredRecord:
    """Check a record (a ListingRecord or its JSON Lines dict) and convert its values; RecordError if bad.

    The rules (refused, or changed with a note in `notes`) are docs/ingest.md's table.
    """
    data: Any = record.to_dict() if hasattr(record, "to_dict") else record
    if not isinstance(data, dict):
        raise RecordError(f"a record must be a JSON object, not {type(data).__name__}")
    notes = _Notes()
    url = _optional_str(data, "url", notes)
    title = _optional_str(data, "title", notes)
    if not url:
        raise RecordError("no url")
    if not title:
        raise RecordError("no title")
    source = _optional_str(data, "source", notes)
    if not source:
        raise RecordError("no source")
    if len(source) > MAX_SOURCE:
        raise RecordError(f"source longer than {MAX_SOURCE} characters")
    external_id = data.get("external_id")
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)
    if external_id is not None and not isinstance(external_id, str):
        raise RecordError(f"external_id must be a string, not {type(external_id).__name__}")
    body = data.get("body") or ""
    if not isinstance(body, str):
        raise RecordError(f"body must be a string, not {type(body).__name__}")
    body = notes.text("body", body)
    posted_raw = _optional_str(data, "posted_at", notes)
    try:
        posted_at = parse_datetime(posted_raw) if posted_raw else None
    except ValueError:
        raise RecordError(f"posted_at is not an ISO-8601 time: {str(posted_raw)[:60]!r}") from None
    except OverflowError:
        raise RecordError(f"posted_at out of range: {str(posted_raw)[:60]!r}") from None
    price = _price(data.get("price"), notes)
    images = _images(data.get("images"), notes)
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise RecordError(f"extra must be an object, not {type(extra).__name__}")
    seller = _optional_str(data, "seller", notes)
    if seller is not None and len(seller) > MAX_KEY:
        notes.append(f"seller: clipped to {MAX_KEY} of {len(seller)} characters")
        seller = seller[:MAX_KEY]
    currency = _optional_str(data, "currency", notes)
    if currency is not None and len(currency) > MAX_CURRENCY:
        raise RecordError(f"currency longer than {MAX_CURRENCY} characters: {currency[:20]!r}")
    try:
        if extra:
            extra = _storable_json(extra, notes)
        external_id = _key(notes.text("external_id", external_id) if external_id else url, notes)
        hashed = record_hash(url, title, body, seller, posted_at, price, currency, images, extra)
    except RecursionError:
        raise RecordError("extra is nested too deeply") from None
    return StoredRecord(
        source,
        url,
        external_id,  # a source without ids is keyed by its canonical URL
        title,
        body,
        seller,
        posted_at,
        price,
        currency,
        images,
        extra,
        content_hash(title, body),
        hashed,
        tuple(dict.fromkeys(notes)),
    )
