"""Generic shop pages: schema.org Product/IndividualProduct/Offer in JSON-LD or microdata, via extruct.

Shapes vary a lot in the wild (sources.md §5): `@graph` wrappers, `@type` lists, several scripts per page,
offers as an object, a list or an AggregateOffer, images as a string, a list or ImageObjects. A
`serialNumber` (on the product or its offer) is written into the body as "Serial Number: X" so the text
analyser sees it. A list page may carry a schema.org ItemList; its item URLs become `detail_urls`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import extruct
from lxml import etree
from lxml import html as lxml_html
from w3lib.html import get_base_url

from crawler.pages._text import as_text, html_to_text, normalise_price, parse_iso_time, query_params, unique
from crawler.pages.records import ListingRecord, PageResult

SOURCE = "jsonld"
PRODUCT_TYPES = frozenset({"Product", "IndividualProduct", "ProductModel", "SomeProducts", "Vehicle"})


def _types(node: dict[str, Any]) -> set[str]:
    """`@type` as bare names, whether a string, a list, or a full `https://schema.org/X` IRI."""
    raw = node.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    return {str(value).rstrip("/").rsplit("/", 1)[-1] for value in values if value}


def _walk(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every JSON object in a JSON-LD block, `@graph` members included (extruct does not flatten them)."""
    if depth > 20:
        return
    if isinstance(node, list):
        for child in node:
            yield from _walk(child, depth + 1)
    elif isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key != "@context":
                yield from _walk(value, depth + 1)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _name(value: Any) -> str | None:
    """A Brand/Organization/Person as its name; a bare string as itself."""
    value = _first(value)
    if isinstance(value, dict):
        return as_text(value.get("name"))
    return as_text(value)


def _images(value: Any, base_url: str) -> list[str | None]:
    values = value if isinstance(value, list) else [value]
    found: list[str | None] = []
    for item in values:
        if isinstance(item, dict):
            found.append(as_text(item.get("contentUrl")) or as_text(item.get("url")))
        else:
            found.append(as_text(item))
    return [urljoin(base_url, url) if url else None for url in found]


def _offers(product: dict[str, Any]) -> list[dict[str, Any]]:
    raw = product.get("offers")
    values = raw if isinstance(raw, list) else [raw]
    return [offer for offer in values if isinstance(offer, dict)]


def _short_iri(value: Any) -> str | None:
    """`https://schema.org/UsedCondition` -> `UsedCondition`; bare names stay as they are."""
    text = as_text(_first(value))
    return text.rstrip("/").rsplit("/", 1)[-1] if text else None


def _product_record(product: dict[str, Any], page_url: str, base_url: str, syntax: str) -> ListingRecord:
    name = as_text(product.get("name"))
    if not name:
        raise ValueError("no name")
    offers = _offers(product)
    offer = offers[0] if offers else {}
    aggregate = "AggregateOffer" in _types(offer) if offer else False
    currency = as_text(offer.get("priceCurrency"))
    price_value = offer.get("price")
    if price_value is None and aggregate:
        price_value = offer.get("lowPrice")
    if price_value is None:
        price_value = (
            (offer.get("priceSpecification") or {}).get("price")
            if isinstance(offer.get("priceSpecification"), dict)
            else None
        )
    serial = as_text(_first(product.get("serialNumber"))) or next(
        (as_text(_first(o.get("serialNumber"))) for o in offers if as_text(_first(o.get("serialNumber")))),
        None,
    )
    own_url = as_text(product.get("url")) or as_text(offer.get("url"))
    own_url = urljoin(base_url, own_url) if own_url else None
    url = own_url or page_url
    sku = as_text(product.get("sku")) or as_text(product.get("productID"))

    body = html_to_text(as_text(product.get("description")))
    if serial:
        body = f"{body}\nSerial Number: {serial}" if body else f"Serial Number: {serial}"

    extra: dict[str, Any] = {"syntax": syntax, "types": sorted(_types(product))}
    for key, value in (
        ("brand", _name(product.get("brand"))),
        ("model", _name(product.get("model"))),
        ("sku", sku),
        ("mpn", as_text(product.get("mpn"))),
        ("serial_number", serial),
        ("production_date", as_text(product.get("productionDate"))),
        ("category", as_text(_first(product.get("category")))),
        ("condition", _short_iri(offer.get("itemCondition") or product.get("itemCondition"))),
        ("availability", _short_iri(offer.get("availability"))),
        ("high_price", normalise_price(offer.get("highPrice"), currency) if aggregate else None),
        ("offer_count", as_text(offer.get("offerCount")) if aggregate else None),
    ):
        if value:
            extra[key] = value
    if as_text(product.get("@id")):
        extra["id"] = as_text(product.get("@id"))

    return ListingRecord(
        source=SOURCE,
        url=url,
        # Several products can share one page: its URL identifies a product only when nothing better exists.
        external_id=sku or own_url or as_text(product.get("@id")) or page_url,
        title=name,
        body=body,
        seller=_name(offer.get("seller")) or _name(product.get("seller")),
        posted_at=parse_iso_time(as_text(product.get("datePosted")) or as_text(offer.get("validFrom"))),
        price=normalise_price(price_value, currency),
        currency=currency,
        images=unique(_images(product.get("image"), base_url)),
        extra=extra,
    )


def _item_list_urls(node: dict[str, Any], base_url: str) -> list[str]:
    urls: list[str] = []
    elements = node.get("itemListElement")
    for element in elements if isinstance(elements, list) else [elements]:
        if not isinstance(element, dict):
            continue
        item = element.get("item")
        url = as_text(element.get("url")) or (
            as_text(item.get("url")) or as_text(item.get("@id")) if isinstance(item, dict) else as_text(item)
        )
        if url:
            urls.append(urljoin(base_url, url))
    return urls


def _next_link(html: str, base_url: str) -> str | None:
    """`<link rel="next">` or `<a rel="next">`, the usual paging hint on shop list pages."""
    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    hrefs = root.xpath("//link[@rel='next']/@href | //a[@rel='next']/@href")
    return urljoin(base_url, hrefs[0]) if hrefs else None


def parse_product_page(html: str | bytes, url: str) -> PageResult:
    """Products on a shop page (one record per schema.org Product), plus ItemList URLs and the next page."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    if not html.strip():
        return PageResult(errors=(f"jsonld: empty page {url}",))
    base_url = get_base_url(html, url)
    errors: list[str] = []
    try:
        data = extruct.extract(
            html,
            base_url=base_url,
            syntaxes=["json-ld", "microdata", "opengraph"],
            uniform=True,
            errors="log",
        )
    except Exception as exc:  # extruct surfaces parser errors of several libraries; keep the page's error
        return PageResult(errors=(f"jsonld: structured data unreadable on {url}: {exc}",))

    records: list[ListingRecord] = []
    detail_urls: list[str] = []
    seen: set[int] = set()
    index = 0
    for syntax in ("json-ld", "microdata"):
        for block in data.get(syntax) or []:
            for node in _walk(block):
                if id(node) in seen:
                    continue
                types = _types(node)
                if "ItemList" in types:
                    detail_urls.extend(_item_list_urls(node, base_url))
                    # Products summarised inside a list are pages to fetch, not listings read here.
                    seen.update(id(inner) for inner in _walk(node.get("itemListElement")))
                    continue
                candidate = None
                if types & PRODUCT_TYPES:
                    candidate = node
                elif "Offer" in types and isinstance(node.get("itemOffered"), dict):
                    # An Offer wrapping its product: read it as the product with this offer.
                    candidate = {
                        **node["itemOffered"],
                        "offers": {k: v for k, v in node.items() if k != "itemOffered"},
                    }
                    seen.add(id(node["itemOffered"]))
                if candidate is None:
                    continue
                seen.add(id(node))
                # Products nested inside this one (isRelatedTo, isAccessoryOrSparePartFor) are not listings.
                for inner in _walk({k: v for k, v in candidate.items() if k not in {"offers"}}):
                    if inner is not candidate:
                        seen.add(id(inner))
                index += 1
                try:
                    records.append(_product_record(candidate, url, base_url, syntax))
                except ValueError as exc:
                    errors.append(f"{syntax} product {index}: {exc}")
    if not records and not detail_urls and not errors:
        errors.append(f"jsonld: no schema.org Product on {url}")
    return PageResult(
        records=tuple(records),
        next_params=query_params(_next_link(html, base_url)),
        total=None,
        detail_urls=unique(detail_urls),
        errors=tuple(errors),
    )
