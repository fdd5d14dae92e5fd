"""eBay Browse API (`item_summary/search`, `item/<id>`) and its OAuth token response, as records.

The Browse API is used rather than HTML (sources.md §3): HTML search pages sit behind bot checks.
Item specifics (`localizedAspects`) may hold a "Serial Number"; it is written into the body as
"Serial Number: X" so the serial analyser, which reads text, sees it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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

SOURCE = "ebay"


@dataclass(frozen=True, slots=True)
class EbayToken:
    """An application access token from the client-credentials grant; `expires_in` is in seconds."""

    access_token: str
    expires_in: int
    token_type: str


def _load(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"ebay: not readable JSON: {exc}") from exc


def _aspects(item: dict[str, Any]) -> dict[str, str]:
    """Item specifics as {name: value}; a repeated name keeps all values joined by "; "."""
    found: dict[str, str] = {}
    for aspect in item.get("localizedAspects") or []:
        name, value = as_text(dig(aspect, "name")), as_text(dig(aspect, "value"))
        if name and value:
            found[name] = f"{found[name]}; {value}" if name in found else value
    return found


def item_record(item: Any) -> ListingRecord:
    """One item summary (search) or item (getItem) as a record; ValueError names what is missing."""
    if not isinstance(item, dict):
        raise ValueError(f"item is not an object but {type(item).__name__}")
    external_id = as_text(item.get("legacyItemId")) or as_text(item.get("itemId"))
    if not external_id:
        raise ValueError("no itemId")
    title = as_text(item.get("title"))
    if not title:
        raise ValueError("no title")
    url = as_text(item.get("itemWebUrl")) or f"https://www.ebay.com/itm/{external_id}"
    price = item.get("price") if isinstance(item.get("price"), dict) else item.get("currentBidPrice")
    price = price if isinstance(price, dict) else {}
    currency = as_text(price.get("currency"))

    aspects = _aspects(item)
    body_parts = [html_to_text(item.get("description")) if isinstance(item.get("description"), str) else ""]
    if not body_parts[0]:
        body_parts = [as_text(item.get("shortDescription")) or ""]
    if as_text(item.get("conditionDescription")):
        body_parts.append(f"Condition: {as_text(item.get('conditionDescription'))}")
    serial = aspects.get("Serial Number")
    if serial:
        body_parts.append(f"Serial Number: {serial}")

    extra: dict[str, Any] = {"item_id": as_text(item.get("itemId"))}
    for key, name in (
        ("condition", "condition"),
        ("conditionId", "condition_id"),
        ("itemOriginDate", "item_origin_date"),
        ("itemEndDate", "item_end_date"),
        ("listingMarketplaceId", "marketplace"),
        ("brand", "brand"),
        ("categoryPath", "category_path"),
    ):
        value = as_text(item.get(key))
        if value:
            extra[name] = parse_iso_time(value) if name.endswith("_date") else value
    if isinstance(item.get("buyingOptions"), list):
        extra["buying_options"] = [str(option) for option in item["buyingOptions"]]
    if isinstance(item.get("bidCount"), int):
        extra["bid_count"] = item["bidCount"]
    if as_text(price.get("convertedFromValue")):
        extra["converted_from"] = {
            "price": as_text(price.get("convertedFromValue")),
            "currency": as_text(price.get("convertedFromCurrency")),
        }
    location = item.get("itemLocation")
    if isinstance(location, dict) and location:
        extra["location"] = {k: str(v) for k, v in location.items() if as_text(v)}
    if aspects:
        extra["aspects"] = aspects

    images: list[str | None] = [dig(image, "imageUrl") for image in item.get("thumbnailImages") or []]
    if not any(images):
        images.append(dig(item, "image", "imageUrl"))
    images.extend(dig(image, "imageUrl") for image in item.get("additionalImages") or [])

    return ListingRecord(
        source=SOURCE,
        url=url,
        external_id=external_id,
        title=title,
        body="\n".join(part for part in body_parts if part),
        seller=as_text(dig(item, "seller", "username")),
        posted_at=parse_iso_time(as_text(item.get("itemCreationDate")))
        or parse_iso_time(as_text(item.get("itemOriginDate"))),
        price=normalise_price(price.get("value"), currency),
        currency=currency,
        images=unique(images),
        extra={key: value for key, value in extra.items() if value is not None},
    )


def parse_search(text: str | bytes) -> PageResult:
    """One page of `item_summary/search`; an empty result has no `itemSummaries` key at all."""
    try:
        data = _load(text)
    except ValueError as exc:
        return PageResult(errors=(str(exc),))
    if not isinstance(data, dict):
        return PageResult(errors=("ebay: the response is not a JSON object",))
    errors: list[str] = []
    summaries = data.get("itemSummaries") or []
    if not isinstance(summaries, list):
        errors.append("ebay: 'itemSummaries' is not a list")
        summaries = []
    records, item_errors = collect_records(summaries, item_record, "item", "itemId")
    errors += item_errors
    total = data.get("total")
    return PageResult(
        records=tuple(records),
        next_params=query_params(as_text(data.get("next"))),
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        errors=tuple(errors),
    )


def parse_item(text: str | bytes) -> ListingRecord:
    """`item/<itemId>` (getItem): description, item specifics, all images. ValueError if unreadable."""
    return item_record(_load(text))


def parse_token(text: str | bytes) -> EbayToken:
    """The OAuth client-credentials response; ValueError when it holds no token (e.g. an error body)."""
    data = _load(text)
    token = as_text(dig(data, "access_token"))
    if not token:
        error = as_text(dig(data, "error_description")) or as_text(dig(data, "error")) or "no access_token"
        raise ValueError(f"ebay token: {error}")
    try:
        expires_in = int(dig(data, "expires_in") or 0)
    except (TypeError, ValueError):
        expires_in = 0
    return EbayToken(access_token=token, expires_in=expires_in, token_type=as_text(dig(data, "token_type")) or "Bearer")
