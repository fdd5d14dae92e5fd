"""Reverb API (`/api/listings`, `/api/listings/<id>`): HAL+JSON listings as records.

Two listing shapes exist (sources.md §2.3): the 2026 API nests `condition` as an object, the 2020 one had
flat `condition` / `condition_uuid` / `condition_slug` strings and `category_uuids`; both are read.
"""

from __future__ import annotations

import json
from typing import Any

from crawler.pages._text import (
    as_text,
    collect_records,
    dig,
    html_to_text,
    normalise_price,
    parse_iso_time,
    query_params,
    unique,
)
from crawler.pages.records import ListingRecord, PageResult

SOURCE = "reverb"


def _load(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"reverb: not readable JSON: {exc}") from exc


def _condition(listing: dict[str, Any]) -> dict[str, str]:
    """Condition name, slug and uuid from either API shape."""
    value = listing.get("condition")
    if isinstance(value, dict):
        found = {
            "condition": as_text(value.get("display_name")),
            "condition_slug": as_text(value.get("slug")),
            "condition_uuid": as_text(value.get("uuid")),
        }
    else:
        found = {
            "condition": as_text(value),
            "condition_slug": as_text(listing.get("condition_slug")),
            "condition_uuid": as_text(listing.get("condition_uuid")),
        }
    return {key: val for key, val in found.items() if val}


def _photos(listing: dict[str, Any]) -> list[str | None]:
    """Largest rendition of each photo: `full`, else `large_crop`; the lone `_links.photo` as a fallback."""
    found: list[str | None] = []
    for photo in listing.get("photos") or []:
        links = dig(photo, "_links") or {}
        found.append(dig(links, "full", "href") or dig(links, "large_crop", "href") or dig(links, "thumbnail", "href"))
    if not any(found):
        found.append(dig(listing, "_links", "photo", "href"))
    return found


def listing_record(listing: Any) -> ListingRecord:
    """One Reverb listing object (collection or detail view) as a record; ValueError names what is missing."""
    if not isinstance(listing, dict):
        raise ValueError(f"listing is not an object but {type(listing).__name__}")
    listing_id = as_text(listing.get("id"))
    if not listing_id:
        raise ValueError("no id")
    title = as_text(listing.get("title"))
    if not title:
        raise ValueError("no title")
    price: dict[str, Any] = listing["price"] if isinstance(listing.get("price"), dict) else {}
    currency = as_text(price.get("currency")) or as_text(listing.get("listing_currency"))
    extra: dict[str, Any] = {
        key: as_text(listing.get(key)) for key in ("make", "model", "year", "finish") if as_text(listing.get(key))
    }
    extra.update(_condition(listing))
    shop_slug = as_text(dig(listing, "shop", "slug"))
    if shop_slug:
        extra["shop_slug"] = shop_slug
    state = dig(listing, "state", "slug") if isinstance(listing.get("state"), dict) else listing.get("state")
    if as_text(state):
        extra["state"] = as_text(state)
    categories = [as_text(c.get("full_name")) for c in listing.get("categories") or [] if isinstance(c, dict)]
    if any(categories):
        extra["categories"] = [c for c in categories if c]
    if as_text(listing.get("sku")):
        extra["sku"] = as_text(listing.get("sku"))
    location = listing.get("location")
    if isinstance(location, dict) and location:
        extra["location"] = {k: v for k, v in location.items() if isinstance(v, str) and v}
    web = as_text(dig(listing, "_links", "web", "href")) or f"https://reverb.com/item/{listing_id}"
    return ListingRecord(
        source=SOURCE,
        url=web,
        external_id=listing_id,
        title=title,
        body=html_to_text(listing.get("description") if isinstance(listing.get("description"), str) else None),
        seller=as_text(listing.get("shop_name")),
        posted_at=parse_iso_time(as_text(listing.get("published_at")))
        or parse_iso_time(as_text(listing.get("created_at"))),
        price=normalise_price(price.get("amount"), currency),
        currency=currency,
        images=unique(_photos(listing)),
        extra=extra,
    )


def parse_listings(text: str | bytes) -> PageResult:
    """One page of `/api/listings?query=...`: records, next-page query (`_links.next`) and the total."""
    try:
        data = _load(text)
    except ValueError as exc:
        return PageResult(errors=(str(exc),))
    if not isinstance(data, dict):
        return PageResult(errors=("reverb: the response is not a JSON object",))
    errors: list[str] = []
    listings = data.get("listings")
    if listings is None:
        listings = []
    if not isinstance(listings, list):
        errors.append("reverb: 'listings' is not a list")
        listings = []
    records, listing_errors = collect_records(listings, listing_record, "listing", "id", id_label="id ")
    errors += listing_errors
    total = data.get("total")
    return PageResult(
        records=tuple(records),
        next_params=query_params(as_text(dig(data, "_links", "next", "href"))),
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        errors=tuple(errors),
    )


def parse_listing_detail(text: str | bytes) -> ListingRecord:
    """`/api/listings/<id>`: the full listing (all photos, location). Raises ValueError when unreadable."""
    return listing_record(_load(text))
