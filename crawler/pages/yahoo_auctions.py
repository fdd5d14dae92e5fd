"""Yahoo! Auctions Japan: search result pages (partial records + item URLs) and item pages (full records).

Search cards spread their `data-auction-*` attributes over several child elements, so they are gathered
from the whole `li.Product`. Item pages come in two shapes while the site migrates (sources.md §4.3): an
inline `var pageData = {...};` script and a Next.js `__NEXT_DATA__` JSON blob; both are read as JSON,
never evaluated. Times are Japan time; prices are yen.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from lxml import etree
from lxml import html as lxml_html

from crawler.pages._text import (
    JST,
    as_text,
    html_to_text,
    normalise_lines,
    normalise_price,
    parse_jst_time,
    query_params,
    unique,
    unix_to_iso,
)
from crawler.pages.records import ListingRecord, PageResult

SOURCE = "yahoo_auctions"
ITEM_URL = "https://auctions.yahoo.co.jp/jp/auction/{auction_id}"
CURRENCY = "JPY"

_PAGE_DATA = re.compile(r"var\s+pageData\s*=\s*")
_AUCTION_ID = re.compile(r"/jp/auction/(?P<id>[A-Za-z]?\d{6,})")
_SELLER_ID = re.compile(r"/seller/(?P<id>[^/?#]+)")
_TOTAL = re.compile(r"(?P<total>[\d,]+)\s*件\s*$")


def _class_xpath(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def _parse_html(markup: str | bytes) -> Any:
    if isinstance(markup, bytes):
        markup = markup.decode("utf-8", errors="replace")
    if not markup.strip():
        raise ValueError("yahoo_auctions: empty page")
    try:
        return lxml_html.document_fromstring(markup)
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"yahoo_auctions: not readable HTML: {exc}") from exc


def _first_text(root: Any, xpath: str) -> str | None:
    for node in root.xpath(xpath):
        text = normalise_lines(node if isinstance(node, str) else node.text_content())
        if text:
            return text
    return None


def canonical_item_url(auction_id: str) -> str:
    """The public item URL, the same whichever mirror or host the page was fetched from."""
    return ITEM_URL.format(auction_id=auction_id)


def _site_base(page_url: str) -> str:
    """The part of a search URL before `/search/`: the real host, or a fixture mount such as
    `http://127.0.0.1:8000/yahoo_auctions`, so item URLs stay on the host the crawl is using."""
    parts = urlsplit(page_url)
    path = parts.path
    cut = path.find("/search/")
    prefix = path[:cut] if cut >= 0 else ""
    return urlunsplit((parts.scheme, parts.netloc, prefix, "", "")).rstrip("/")


# --- search pages -------------------------------------------------------------------------------------


def _card_attributes(card: Any) -> dict[str, str]:
    """All `data-auction-*` attributes of a card and its descendants, first non-empty value winning."""
    found: dict[str, str] = {}
    for element in card.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            if name.startswith("data-auction-") and value.strip():
                found.setdefault(name.removeprefix("data-auction-"), value.strip())
    return found


def _card_record(card: Any) -> ListingRecord:
    attrs = _card_attributes(card)
    auction_id = attrs.get("id")
    if not auction_id:
        href = next((a.get("href", "") for a in card.iter("a") if _AUCTION_ID.search(a.get("href", ""))), "")
        match = _AUCTION_ID.search(href)
        auction_id = match["id"] if match else None
    if not auction_id:
        raise ValueError("no auction id")
    title = attrs.get("title") or _first_text(card, f".//*[{_class_xpath('Product__titleLink')}]")
    if not title:
        raise ValueError("no title")
    extra: dict[str, Any] = {"partial": True}
    end_time = unix_to_iso(attrs.get("endtime"), tz=JST)
    if end_time:
        extra["end_time"] = end_time
    for attr, key in (("startprice", "start_price"), ("buynowprice", "buy_now_price")):
        value = normalise_price(attrs.get(attr), CURRENCY)
        if value and value != "0":
            extra[key] = value
    if attrs.get("category"):
        extra["category_id"] = attrs["category"]
    bids = _first_text(card, f".//*[{_class_xpath('Product__bid')}]")
    if bids and bids.isdigit():
        extra["bids"] = int(bids)
    postage = _first_text(card, f".//*[{_class_xpath('Product__postage')} or {_class_xpath('Product__shipping')}]")
    if postage:
        extra["postage"] = postage
    price = normalise_price(attrs.get("price"), CURRENCY)
    if price is None:
        price = normalise_price(_first_text(card, f".//*[{_class_xpath('Product__priceValue')}]"), CURRENCY)
    image = attrs.get("img") or next((img.get("src") for img in card.iter("img") if img.get("src")), None)
    return ListingRecord(
        source=SOURCE,
        url=canonical_item_url(auction_id),
        external_id=auction_id,
        title=title,
        seller=attrs.get("auc-seller-id"),
        price=price,
        currency=CURRENCY,
        images=unique([image]),
        extra=extra,
    )


def _next_params(root: Any, page_url: str, shown: int) -> dict[str, str] | None:
    """Paging from the pager's "next" link; without a pager, a full page (`n` results) implies another."""
    pager = root.xpath(f"//*[{_class_xpath('Pager')}]")
    next_links = root.xpath(f"//*[{_class_xpath('Pager__list--next')}]//a[@href] | //a[@rel='next'][@href]")
    if next_links:
        return query_params(urljoin(page_url, next_links[0].get("href")))
    if pager:
        return None
    current = query_params(page_url) or {}
    try:
        start, size = int(current.get("b", "1")), int(current.get("n", "0"))
    except ValueError:
        return None
    if size and shown >= size:
        return {**current, "b": str(start + size), "n": str(size)}
    return None


def parse_search(html: str | bytes, page_url: str) -> PageResult:
    """One search page: partial records (title, price, seller, end time) and the item pages to fetch."""
    try:
        root = _parse_html(html)
    except ValueError as exc:
        return PageResult(errors=(str(exc),))
    records: list[ListingRecord] = []
    errors: list[str] = []
    for index, card in enumerate(root.xpath(f"//li[{_class_xpath('Product')}]"), start=1):
        try:
            records.append(_card_record(card))
        except ValueError as exc:
            errors.append(f"card {index}: {exc}")
    base = _site_base(page_url)
    total_text = _first_text(root, f"//*[{_class_xpath('Tab__subText')}]")
    total_match = _TOTAL.search(total_text or "")
    return PageResult(
        records=tuple(records),
        next_params=_next_params(root, page_url, len(records) + len(errors)),
        total=int(total_match["total"].replace(",", "")) if total_match else None,
        detail_urls=tuple(f"{base}/jp/auction/{record.external_id}" for record in records),
        errors=tuple(errors),
    )


# --- item pages ---------------------------------------------------------------------------------------


def _page_data(root: Any) -> dict[str, Any] | None:
    """The `var pageData = {...};` object, read with a JSON decoder from the opening brace."""
    decoder = json.JSONDecoder()
    for script in root.xpath("//script[not(@src)]/text()"):
        match = _PAGE_DATA.search(script)
        if not match:
            continue
        try:
            value, _ = decoder.raw_decode(script, match.end())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def _find_auction(node: Any, depth: int = 0) -> dict[str, Any] | None:
    """The object holding `auctionId` somewhere inside `__NEXT_DATA__` (its exact path is not known)."""
    if depth > 12:
        return None
    if isinstance(node, dict):
        if "auctionId" in node and ("title" in node or "price" in node):
            return node
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_auction(child, depth + 1)
        if found is not None:
            return found
    return None


def _next_item(root: Any) -> dict[str, Any] | None:
    for script in root.xpath("//script[@id='__NEXT_DATA__']/text()"):
        try:
            return _find_auction(json.loads(script))
        except (json.JSONDecodeError, RecursionError):
            return None
    return None


def _meta(root: Any, prop: str) -> str | None:
    values = root.xpath(f"//meta[@property='{prop}' or @name='{prop}']/@content")
    return as_text(values[0]) if values else None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = as_text(value)
    return {"1": True, "0": False, "true": True, "false": False}.get((text or "").lower())


def parse_item(html: str | bytes, url: str) -> ListingRecord:
    """An item page (`/jp/auction/<id>`) as a full record. Raises ValueError when it holds no auction."""
    root = _parse_html(html)
    data = _page_data(root)
    legacy = data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), dict) else None
    modern = None if legacy else _next_item(root)
    source: dict[str, Any] = legacy or modern or {}

    url_match = _AUCTION_ID.search(url) or _AUCTION_ID.search(_meta(root, "og:url") or "")
    auction_id = (
        as_text(source.get("productID")) or as_text(source.get("auctionId")) or (url_match["id"] if url_match else None)
    )
    if not auction_id:
        raise ValueError(f"yahoo_auctions: no auction id on {url}")
    title = (
        as_text(source.get("productName"))
        or as_text(source.get("title"))
        or _first_text(root, f"//h1[{_class_xpath('ProductTitle__text')}] | //h1")
        or _meta(root, "og:title")
    )
    if not title:
        raise ValueError(f"yahoo_auctions: no title on {url}")

    described = root.xpath("//*[@id='ProductDescription']")
    description = html_to_text(etree.tostring(described[0], encoding="unicode")) if described else ""
    if not description and isinstance(source.get("description"), str):
        description = html_to_text(source["description"])
    if not description:
        description = _meta(root, "og:description") or ""

    seller_href = next((h for h in root.xpath("//a/@href") if _SELLER_ID.search(h)), None)
    seller_json: dict[str, Any] = source["seller"] if isinstance(source.get("seller"), dict) else {}
    seller_match = _SELLER_ID.search(seller_href) if seller_href else None
    seller = (
        as_text(seller_json.get("aucUserId"))
        or (seller_match["id"] if seller_match else None)
        or _first_text(root, f"//*[{_class_xpath('Seller__name')}]")
    )

    images: list[str | None] = list(
        root.xpath(f"//*[{_class_xpath('ProductImage__image')} or {_class_xpath('slick-slide')}]//img/@src")
    )
    for image in source.get("img") or source.get("images") or []:
        images.append(image.get("image") or image.get("url") if isinstance(image, dict) else as_text(image))
    if not any(images):
        images.append(_meta(root, "og:image"))

    price = normalise_price(source.get("price"), CURRENCY)
    if price is None:
        price = normalise_price(_first_text(root, f"//*[{_class_xpath('Price__value')}]/text()"), CURRENCY)

    start = as_text(source.get("starttime")) or as_text(source.get("startTime"))
    end = as_text(source.get("endtime")) or as_text(source.get("endTime"))
    extra: dict[str, Any] = {"page_variant": "pageData" if legacy else ("next_data" if modern else "html")}
    if parse_jst_time(end):
        extra["end_time"] = parse_jst_time(end)
    bids = as_text(source.get("bids"))
    if bids and bids.isdigit():
        extra["bids"] = int(bids)
    closed = _flag(source.get("isClosed"))
    if closed is not None:
        extra["is_closed"] = closed
    for keys, name in (
        (("productCategoryID", "categoryId"), "category_id"),
        (("conditionName", "condition"), "condition"),
        (("location",), "location"),
    ):
        value = next((as_text(source.get(key)) for key in keys if as_text(source.get(key))), None)
        if value:
            extra[name] = value
    win_price = normalise_price(source.get("winPrice"), CURRENCY)
    if win_price and win_price != "0":
        extra["win_price"] = win_price
    buy_now = normalise_price(source.get("buyNowPrice") or source.get("bidorbuy"), CURRENCY)
    if buy_now and buy_now != "0":
        extra["buy_now_price"] = buy_now

    return ListingRecord(
        source=SOURCE,
        url=canonical_item_url(auction_id),
        external_id=auction_id,
        title=title,
        body=description,
        seller=seller,
        posted_at=parse_jst_time(start),
        price=price,
        currency=CURRENCY,
        images=unique(images),
        extra=extra,
    )
