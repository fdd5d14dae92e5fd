"""A listing record checked and converted for storage, and the two hashes that tell what changed.

Records come from any tool or archive (`korgwatch ingest`) and from the spiders, so nothing in them is
trusted: `normalise_record` names the first bad field in a RecordError, and the caller names the line.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

# json.dumps(value, sort_keys=True, default=str) without its per-call argument checks.
_RECORD_HASH_JSON = json.JSONEncoder(sort_keys=True, default=str).encode


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


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _price(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError(f"price must be a decimal string, not {type(value).__name__}")
    try:
        price = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise RecordError(f"price is not a number: {value!r}") from None
    if not price.is_finite():
        raise RecordError(f"price is not a number: {value!r}")
    return price


def _images(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if not isinstance(value, list | tuple):
        raise RecordError("images must be a list of URL strings")
    for image in value:
        if not isinstance(image, str):
            raise RecordError("images must be a list of URL strings")
    return tuple(dict.fromkeys(value))


def normalise_record(record: Any) -> StoredRecord:
    """Check a record (a ListingRecord or its JSON Lines dict) and convert its values; RecordError if bad."""
    data: Any = record.to_dict() if hasattr(record, "to_dict") else record
    if not isinstance(data, dict):
        raise RecordError(f"a record must be a JSON object, not {type(data).__name__}")
    url = _optional_str(data, "url")
    title = _optional_str(data, "title")
    if not url:
        raise RecordError("no url")
    if not title:
        raise RecordError("no title")
    source = _optional_str(data, "source")
    if not source:
        raise RecordError("no source")
    external_id = data.get("external_id")
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)
    if external_id is not None and not isinstance(external_id, str):
        raise RecordError(f"external_id must be a string, not {type(external_id).__name__}")
    body = data.get("body") or ""
    if not isinstance(body, str):
        raise RecordError(f"body must be a string, not {type(body).__name__}")
    posted_raw = _optional_str(data, "posted_at")
    try:
        posted_at = parse_datetime(posted_raw) if posted_raw else None
    except ValueError:
        raise RecordError(f"posted_at is not an ISO-8601 time: {posted_raw!r}") from None
    price = _price(data.get("price"))
    images = _images(data.get("images"))
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise RecordError(f"extra must be an object, not {type(extra).__name__}")
    external_id = external_id or url  # a source without ids is keyed by its canonical URL
    seller = _optional_str(data, "seller")
    currency = _optional_str(data, "currency")
    return StoredRecord(
        source,
        url,
        external_id,
        title,
        body,
        seller,
        posted_at,
        price,
        currency,
        images,
        extra,
        content_hash(title, body),
        record_hash(url, title, body, seller, posted_at, price, currency, images, extra),
    )
