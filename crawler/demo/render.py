"""Renderers for the fixture site: one listing model, written out in each real source's own format.

Formats follow `/work/shared/sources` (sources.md): Blogger Atom and GData JSON, Reverb HAL+JSON, eBay
Browse JSON, Yahoo! Auctions HTML (`li.Product` cards, `var pageData`), schema.org JSON-LD/microdata.
Absolute links point at the real hosts, as the real sources' do; spiders rebuild them on their base URL.
Every renderer escapes what it writes (html.escape, json.dumps), since listing text is arbitrary.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from crawler.pages._text import JST

BLOG_ID = "1700000000000000001"
BLOGGER_FEED = f"https://www.blogger.com/feeds/{BLOG_ID}/posts/default"
MATRIXSYNTH_HOST = "https://www.matrixsynth.com"
REVERB_API = "https://api.reverb.com/api"
EBAY_API = "https://api.ebay.com"
YAHOO_HOST = "https://auctions.yahoo.co.jp"
DEALER_HOST = "https://www.vintagesynth-dealer.example"

REVERB_CONDITIONS = {
    "Brand New": "7c3f45de-2ae0-4c81-8400-fdb6b1d74890",
    "Mint": "ac5b9c1e-dc78-466d-b0b3-7cf712967a48",
    "Excellent": "df268ad1-c462-4ba6-b6db-e007e23922ea",
    "Very Good": "ae4d9114-1bd7-4ec5-a4ba-6653af5ac84d",
    "Good": "f7a3f48c-972a-44c6-b01a-0cd27488d3f6",
    "Fair": "98777886-76d0-44c8-865e-bb40e669e934",
    "Poor": "6a9dfcad-600b-46c8-9e08-ce6e5057921e",
    "Non Functioning": "fbf35668-96a0-4baa-bcde-ab18d6b1b329",
}
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "C$", "AUD": "A$"}


@dataclass(frozen=True, slots=True)
class DemoListing:
    """One listing as the fixture site holds it; each renderer writes it in its source's format."""

    source: str
    id: str
    title: str
    body: str = ""
    seller: str | None = None
    price: str | None = None
    currency: str | None = None
    posted_at: datetime = field(default_factory=lambda: datetime(2024, 3, 14, tzinfo=UTC))
    images: tuple[str, ...] = ()
    serial: str | None = None
    condition: str | None = None
    make: str | None = None
    model: str | None = None
    year: str | None = None
    labels: tuple[str, ...] = ()
    slug: str = ""
    markup: str = "json-ld"  # jsonld source only: "json-ld" or "microdata"

    @property
    def body_lines(self) -> list[str]:
        return [line.strip() for line in self.body.splitlines() if line.strip()]


def slugify(text: str, limit: int = 60) -> str:
    """A URL slug from a title (ASCII only; a title with none gets a short hash)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return slug or hashlib.sha1(text.encode()).hexdigest()[:10]


def _paragraphs(listing: DemoListing) -> str:
    return "".join(f"<p>{html.escape(line)}</p>" for line in listing.body_lines)


def _gdata_escape(text: str) -> str:
    """Google's JSON escapes `& = < > '` inside strings; harmless to any JSON parser, so mimic it."""
    for char, code in (
        ("&", "\\u0026"),
        ("=", "\\u003d"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("'", "\\u0027"),
    ):
        text = text.replace(char, code)
    return text


# --- Matrixsynth (Blogger) ----------------------------------------------------------------------------


def matrixsynth_post_url(listing: DemoListing) -> str:
    return f"{MATRIXSYNTH_HOST}/{listing.posted_at:%Y/%m}/{listing.slug}.html"


def _blogger_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _matrixsynth_content(listing: DemoListing) -> str:
    pictures = "".join(f'<p><img border="0" src="{html.escape(url)}" width="640" /></p>' for url in listing.images)
    lines = "<br />".join(html.escape(line) for line in listing.body_lines)
    return pictures + lines


def _feed_links(start: int, size: int, total: int, alt: str | None) -> dict[str, str]:
    def href(index: int) -> str:
        params = {"alt": alt} if alt else {}
        params.update({"start-index": str(index), "max-results": str(size)})
        return f"{BLOGGER_FEED}?{urlencode(params)}"

    links = {"self": href(start)}
    if start + size <= total:
        links["next"] = href(start + size)
    if start > 1:
        links["previous"] = href(max(1, start - size))
    return links


def render_blogger_atom(page: list[DemoListing], start: int, size: int, total: int) -> str:
    """A Blogger Atom feed page: one line, single-quoted attributes, openSearch totals, rel=next."""
    e = html.escape
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<feed xmlns='http://www.w3.org/2005/Atom' xmlns:openSearch='http://a9.com/-/spec/opensearchrss/1.0/'"
        " xmlns:blogger='http://schemas.google.com/blogger/2008' xmlns:gd=\"http://schemas.google.com/g/2005\""
        " xmlns:thr='http://purl.org/syndication/thread/1.0'>",
        f"<id>tag:blogger.com,1999:blog-{BLOG_ID}</id>",
        f"<updated>{_blogger_time(page[0].posted_at) if page else '2024-01-01T00:00:00.000Z'}</updated>",
        "<title type='text'>MATRIXSYNTH</title><subtitle type='html'>Everything synth</subtitle>",
        f"<link rel='http://schemas.google.com/g/2005#feed' type='application/atom+xml'"
        f" href='{MATRIXSYNTH_HOST}/feeds/posts/default'/>",
    ]
    for rel, href in _feed_links(start, size, total, None).items():
        parts.append(f"<link rel='{rel}' type='application/atom+xml' href='{e(href)}'/>")
    parts.append(f"<link rel='alternate' type='text/html' href='{MATRIXSYNTH_HOST}/'/>")
    parts.append("<author><name>matrix</name><email>noreply@blogger.com</email></author>")
    parts.append("<generator version='7.00' uri='http://www.blogger.com'>Blogger</generator>")
    parts.append(
        f"<openSearch:totalResults>{total}</openSearch:totalResults>"
        f"<openSearch:startIndex>{start}</openSearch:startIndex>"
        f"<openSearch:itemsPerPage>{size}</openSearch:itemsPerPage>"
    )
    for listing in page:
        url = matrixsynth_post_url(listing)
        parts.append("<entry>")
        parts.append(f"<id>tag:blogger.com,1999:blog-{BLOG_ID}.post-{listing.id}</id>")
        parts.append(f"<published>{_blogger_time(listing.posted_at)}</published>")
        parts.append(f"<updated>{_blogger_time(listing.posted_at)}</updated>")
        for label in listing.labels:
            parts.append(f'<category scheme="http://www.blogger.com/atom/ns#" term="{e(label)}"/>')
        parts.append(f"<title type='text'>{e(listing.title)}</title>")
        parts.append(f"<content type='html'>{e(_matrixsynth_content(listing))}</content>")
        parts.append(
            f"<link rel='edit' type='application/atom+xml' href='{BLOGGER_FEED}/{listing.id}'/>"
            f"<link rel='self' type='application/atom+xml' href='{BLOGGER_FEED}/{listing.id}'/>"
            f"<link rel='alternate' type='text/html' href='{e(url)}' title='{e(listing.title)}'/>"
        )
        parts.append(f"<author><name>{e(listing.seller or 'matrix')}</name></author>")
        if listing.images:
            parts.append(
                f'<media:thumbnail xmlns:media="http://search.yahoo.com/mrss/" url="{e(listing.images[0])}"'
                ' height="72" width="72"/>'
            )
        parts.append("</entry>")
    parts.append("</feed>")
    return "".join(parts)


def render_blogger_json(page: list[DemoListing], start: int, size: int, total: int) -> str:
    """The same page as GData JSON (`alt=json`): `$t` text nodes, string numbers, Google's escapes."""

    def text(value: str) -> dict[str, str]:
        return {"$t": value}

    links = [{"rel": "http://schemas.google.com/g/2005#feed", "href": f"{MATRIXSYNTH_HOST}/feeds/posts/default"}]
    links += [
        {"rel": rel, "type": "application/atom+xml", "href": href}
        for rel, href in _feed_links(start, size, total, "json").items()
    ]
    entries = []
    for listing in page:
        entry: dict[str, Any] = {
            "id": text(f"tag:blogger.com,1999:blog-{BLOG_ID}.post-{listing.id}"),
            "published": text(_blogger_time(listing.posted_at)),
            "updated": text(_blogger_time(listing.posted_at)),
            "category": [{"scheme": "http://www.blogger.com/atom/ns#", "term": label} for label in listing.labels],
            "title": {"type": "text", "$t": listing.title},
            "content": {"type": "html", "$t": _matrixsynth_content(listing)},
            "link": [
                {"rel": "self", "type": "application/atom+xml", "href": f"{BLOGGER_FEED}/{listing.id}"},
                {
                    "rel": "alternate",
                    "type": "text/html",
                    "href": matrixsynth_post_url(listing),
                    "title": listing.title,
                },
            ],
            "author": [{"name": text(listing.seller or "matrix")}],
        }
        if listing.images:
            entry["media$thumbnail"] = {"url": listing.images[0], "height": "72", "width": "72"}
        entries.append(entry)
    feed: dict[str, Any] = {
        "xmlns": "http://www.w3.org/2005/Atom",
        "xmlns$openSearch": "http://a9.com/-/spec/opensearchrss/1.0/",
        "id": text(f"tag:blogger.com,1999:blog-{BLOG_ID}"),
        "title": {"type": "text", "$t": "MATRIXSYNTH"},
        "link": links,
        "openSearch$totalResults": text(str(total)),
        "openSearch$startIndex": text(str(start)),
        "openSearch$itemsPerPage": text(str(size)),
    }
    if entries:
        feed["entry"] = entries
    return _gdata_escape(json.dumps({"version": "1.0", "encoding": "UTF-8", "feed": feed}, ensure_ascii=False))


def render_blogger_rss(page: list[DemoListing], start: int, size: int, total: int) -> str:
    """The same page as Blogger RSS 2.0 (`alt=rss`): RFC-822 dates in UTC, `atom:link rel=next` for paging."""
    e = html.escape
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?><rss xmlns:atom='http://www.w3.org/2005/Atom'"
        " xmlns:openSearch='http://a9.com/-/spec/opensearchrss/1.0/' xmlns:thr='http://purl.org/syndication/thread/1.0'"
        " version='2.0'><channel>",
        f"<atom:id>tag:blogger.com,1999:blog-{BLOG_ID}</atom:id><title>MATRIXSYNTH</title>",
        f"<description>Everything synth</description><link>{MATRIXSYNTH_HOST}/</link>",
    ]
    for rel, href in _feed_links(start, size, total, "rss").items():
        parts.append(f"<atom:link rel='{rel}' type='application/rss+xml' href='{e(href)}'/>")
    parts.append(
        f"<openSearch:totalResults>{total}</openSearch:totalResults>"
        f"<openSearch:startIndex>{start}</openSearch:startIndex>"
        f"<openSearch:itemsPerPage>{size}</openSearch:itemsPerPage>"
    )
    for listing in page:
        parts.append(
            f"<item><guid isPermaLink='false'>tag:blogger.com,1999:blog-{BLOG_ID}.post-{listing.id}</guid>"
            f"<pubDate>{listing.posted_at.astimezone(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<atom:updated>{_blogger_time(listing.posted_at)}</atom:updated>"
        )
        for label in listing.labels:
            parts.append(f"<category domain='http://www.blogger.com/atom/ns#'>{e(label)}</category>")
        parts.append(
            f"<title>{e(listing.title)}</title><description>{e(_matrixsynth_content(listing))}</description>"
            f"<link>{e(matrixsynth_post_url(listing))}</link>"
            f"<author>noreply@blogger.com ({e(listing.seller or 'matrix')})</author>"
        )
        if listing.images:
            parts.append(
                f'<media:thumbnail xmlns:media="http://search.yahoo.com/mrss/" url="{e(listing.images[0])}"'
                ' height="72" width="72"/>'
            )
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts)


# --- Reverb -------------------------------------------------------------------------------------------


def _money(amount: str | None, currency: str | None) -> dict[str, Any]:
    value = amount or "0.00"
    cents = round(float(value) * 100)
    symbol = CURRENCY_SYMBOLS.get(currency or "", "")
    whole = f"{float(value):,.0f}" if float(value).is_integer() else f"{float(value):,.2f}"
    return {
        "tax_included": False,
        "amount": value,
        "amount_cents": cents,
        "currency": currency,
        "symbol": symbol,
        "display": f"{symbol}{whole}",
    }


def reverb_listing(listing: DemoListing, *, detail: bool = False) -> dict[str, Any]:
    """A Reverb listing object in the 2026 shape (condition as an object, `_links.web`)."""
    slug = f"{listing.id}-{listing.slug}"
    condition = listing.condition or "Good"
    photos = [
        {
            "_links": {
                "large_crop": {"href": url},
                "small_crop": {"href": url},
                "full": {"href": url},
                "thumbnail": {"href": url},
            }
        }
        for url in listing.images
    ]
    data: dict[str, Any] = {
        "id": int(listing.id) if listing.id.isdigit() else listing.id,
        "make": listing.make or "",
        "model": listing.model or "",
        "finish": "",
        "year": listing.year or "",
        "title": listing.title,
        "created_at": listing.posted_at.isoformat(timespec="seconds"),
        "shop_name": listing.seller,
        "shop": {"slug": slugify(listing.seller or "shop"), "preferred_seller": False},
        "description": _paragraphs(listing),
        "condition": {
            "uuid": REVERB_CONDITIONS.get(condition, REVERB_CONDITIONS["Good"]),
            "display_name": condition,
            "slug": slugify(condition),
        },
        "price": _money(listing.price, listing.currency),
        "buyer_price": _money(listing.price, listing.currency),
        "inventory": 1,
        "has_inventory": False,
        "offers_enabled": True,
        "listing_currency": listing.currency,
        "published_at": listing.posted_at.isoformat(timespec="seconds"),
        "state": {"slug": "live", "description": "Live"},
        "auction": False,
        "photos": photos,
        "_links": {
            "photo": {"href": listing.images[0]} if listing.images else None,
            "self": {"href": f"{REVERB_API}/listings/{slug}"},
            "web": {"href": f"https://reverb.com/item/{slug}"},
            "cart": {"href": f"{REVERB_API}/cart/{listing.id}"},
        },
    }
    if data["_links"]["photo"] is None:
        del data["_links"]["photo"]
    if detail:
        data["location"] = {"country_code": "US", "region": "", "locality": ""}
        data["shipping_policy"] = ""
        data["live"] = True
    return data


def render_reverb_page(
    page: list[DemoListing], params: dict[str, str], page_number: int, per_page: int, total: int
) -> str:
    """The `/api/listings` envelope: total, paging, `_links.next`/`prev` on api.reverb.com."""
    total_pages = (total + per_page - 1) // per_page if per_page else 0

    def href(number: int) -> str:
        query = dict(sorted({**params, "page": str(number), "per_page": str(per_page)}.items()))
        return f"{REVERB_API}/listings?{urlencode(query)}"

    links: dict[str, Any] = {"listing": {"href": "https://reverb.com/sell"}}
    if page_number < total_pages:
        links["next"] = {"href": href(page_number + 1)}
    if page_number > 1:
        links["prev"] = {"href": href(page_number - 1)}
    body = {
        "total": total,
        "total_pages": total_pages,
        "current_page": page_number,
        "per_page": per_page,
        "ships_to": "Everywhere Else",
        "humanized_params": params.get("query", ""),
        "listings": [reverb_listing(listing) for listing in page],
        "_links": links,
    }
    return json.dumps(body, ensure_ascii=False)


# --- eBay ---------------------------------------------------------------------------------------------


def _ebay_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ebay_item_id(listing: DemoListing) -> str:
    return f"v1|{listing.id}|0"


def ebay_item(listing: DemoListing, *, detail: bool = False) -> dict[str, Any]:
    """An item summary (search) or a getItem object (detail: description and item specifics)."""
    item: dict[str, Any] = {
        "itemId": ebay_item_id(listing),
        "title": listing.title,
        "leafCategoryIds": ["38071"],
        "price": {"value": listing.price or "0.00", "currency": listing.currency or "USD"},
        "itemHref": f"{EBAY_API}/buy/browse/v1/item/{quote(ebay_item_id(listing), safe='')}",
        "seller": {
            "username": listing.seller or "unknown",
            "feedbackPercentage": "100.0",
            "feedbackScore": 10,
        },
        "condition": listing.condition or "Used",
        "conditionId": "3000",
        "buyingOptions": ["FIXED_PRICE"],
        "itemWebUrl": f"https://www.ebay.com/itm/{listing.id}",
        "itemLocation": {"postalCode": "972**", "country": "US"},
        "legacyItemId": listing.id,
        "itemOriginDate": _ebay_time(listing.posted_at),
        "itemCreationDate": _ebay_time(listing.posted_at),
        "listingMarketplaceId": "EBAY_US",
    }
    if listing.images:
        item["image"] = {"imageUrl": listing.images[0]}
        item["additionalImages"] = [{"imageUrl": url} for url in listing.images[1:]]
    if detail:
        aspects = [{"type": "STRING", "name": "Brand", "value": listing.make or "Korg"}]
        if listing.model:
            aspects.append({"type": "STRING", "name": "Model", "value": listing.model})
        if listing.serial:
            aspects.append({"type": "STRING", "name": "Serial Number", "value": listing.serial})
        item["localizedAspects"] = aspects
        item["description"] = f"<div>{_paragraphs(listing)}</div>"
        item["itemEndDate"] = _ebay_time(listing.posted_at + timedelta(days=30))
    return item


def render_ebay_search(page: list[DemoListing], params: dict[str, str], limit: int, offset: int, total: int) -> str:
    """`item_summary/search`: `next`/`prev` on api.ebay.com; no `itemSummaries` key when empty."""

    def href(at: int) -> str:
        query = urlencode({**params, "limit": str(limit), "offset": str(at)})
        return f"{EBAY_API}/buy/browse/v1/item_summary/search?{query}"

    body: dict[str, Any] = {"href": href(offset), "total": total}
    if offset + limit < total:
        body["next"] = href(offset + limit)
    if offset > 0:
        body["prev"] = href(max(0, offset - limit))
    body["limit"] = limit
    body["offset"] = offset
    if page:
        body["itemSummaries"] = [ebay_item(listing) for listing in page]
    return json.dumps(body, ensure_ascii=False)


# --- Yahoo! Auctions ----------------------------------------------------------------------------------


def _yen(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0


def render_yahoo_search(page: list[DemoListing], params: dict[str, str], start: int, size: int, total: int) -> str:
    """A search page: `li.Product` cards with `data-auction-*` spread over child links, and a pager."""
    e = html.escape
    cards = []
    for listing in page:
        item_url = f"{YAHOO_HOST}/jp/auction/{listing.id}"
        end = int((listing.posted_at + timedelta(days=7)).timestamp())
        image = listing.images[0] if listing.images else ""
        price = _yen(listing.price)
        cards.append(
            '<li class="Product">'
            f'<div class="Product__image"><a class="Product__imageLink" href="{e(item_url)}"'
            f' data-auction-id="{e(listing.id)}" data-auction-img="{e(image)}"'
            f' data-auction-endtime="{end}" data-auction-category="2084019009" rel="nofollow">'
            f'<img class="Product__imageData" src="{e(image)}" alt="{e(listing.title)}"></a></div>'
            '<div class="Product__detail"><h3 class="Product__title">'
            f'<a class="Product__titleLink" href="{e(item_url)}" data-auction-id="{e(listing.id)}"'
            f' data-auction-title="{e(listing.title)}" data-auction-price="{price}"'
            f' data-auction-startprice="{price}" data-auction-buynowprice="0"'
            f' data-auction-auc-seller-id="{e(listing.seller or "")}">{e(listing.title)}</a></h3>'
            '<div class="Product__priceInfo"><span class="Product__price">'
            '<span class="Product__label">現在</span>'
            f'<span class="Product__priceValue u-textRed">{price:,}円</span></span></div>'
            '<div class="Product__otherInfo"><dl class="Product__bidWrap">'
            '<dt class="Product__bidLabel">入札</dt>'
            '<dd class="Product__bid">0</dd></dl></div></div></li>'
        )

    def href(at: int) -> str:
        return f"{YAHOO_HOST}/search/search?{urlencode({**params, 'b': str(at), 'n': str(size)})}"

    pager = ['<div class="Pager"><ul class="Pager__lists">']
    if start > 1:
        pager.append(
            '<li class="Pager__list Pager__list--prev">'
            f'<a class="Pager__link" href="{e(href(max(1, start - size)))}">前へ</a></li>'
        )
    pager.append(
        f'<li class="Pager__list Pager__list--current"><span class="Pager__link">{(start - 1) // size + 1}</span></li>'
    )
    if start + size <= total:
        pager.append(
            '<li class="Pager__list Pager__list--next">'
            f'<a class="Pager__link" href="{e(href(start + size))}">次へ</a></li>'
        )
    pager.append("</ul></div>")
    shown_to = start + len(page) - 1
    summary = f"{start}〜{shown_to}件/{total:,}件" if page else f"{total}件"
    query = e(params.get("p", ""))
    return (
        '<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8">'
        f'<title>「{query}」の検索結果 - Yahoo!オークション</title></head><body><div id="allContents">'
        f'<div class="SearchMode"><p class="Tab__subText">{summary}</p></div>'
        f'<ul class="Products__items">{"".join(cards)}</ul>'
        f"{''.join(pager) if page else ''}</div></body></html>"
    )


def yahoo_times(listing: DemoListing) -> tuple[str, str]:
    """Start and end as Yahoo writes them: naive "YYYY-MM-DD HH:MM:SS" in Japan time."""
    start = listing.posted_at.astimezone(JST)
    end = start + timedelta(days=7)
    return start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%Y-%m-%d %H:%M:%S")


def render_yahoo_item(listing: DemoListing) -> str:
    """An item page with the inline `var pageData = {...};` script and `#ProductDescription`."""
    e = html.escape
    start, end = yahoo_times(listing)
    price = str(_yen(listing.price))
    page_data = {
        "items": {
            "productID": listing.id,
            "productName": listing.title,
            "productCategoryID": "2084019009",
            "price": price,
            "taxinPrice": price,
            "quantity": "1",
            "bids": "0",
            "starttime": start,
            "endtime": end,
            "isClosed": "0",
            "hasWinner": "0",
            "winPrice": "0",
            "conditionName": listing.condition or "",
        },
        "page": {"pageType": "item"},
    }
    # "</" inside a script would end it early: escape the slash, which JSON allows.
    script = json.dumps(page_data, ensure_ascii=False).replace("</", "<\\/")
    images = "".join(
        f'<li class="ProductImage__image"><div class="ProductImage__inner"><img src="{e(url)}" alt=""></div></li>'
        for url in listing.images
    )
    description = "<br>\n".join(e(line) for line in listing.body_lines)
    og_image = f'<meta property="og:image" content="{e(listing.images[0])}">' if listing.images else ""
    seller = e(listing.seller or "")
    return (
        '<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8">'
        f"<title>{e(listing.title)} - Yahoo!オークション</title>"
        f'<meta property="og:title" content="{e(listing.title)}">{og_image}'
        f'<meta property="og:description" content="{e(" ".join(listing.body_lines)[:200])}">'
        f'<meta property="og:url" content="{YAHOO_HOST}/jp/auction/{e(listing.id)}">'
        f'<script>\nvar pageData = {script};\n</script></head><body><div id="l-contents">'
        f'<div class="ProductTitle"><h1 class="ProductTitle__text">{e(listing.title)}</h1></div>'
        f'<div class="ProductImage"><ul class="ProductImage__images">{images}</ul></div>'
        f'<div class="Price Price--current"><dl><dt class="Price__title">現在</dt>'
        f'<dd class="Price__value">{int(price):,}円</dd></dl></div>'
        '<div class="Seller"><p class="Seller__name">'
        f'<a href="{YAHOO_HOST}/seller/{seller}">{seller}</a></p></div>'
        '<div id="ProductDescription" class="ProductExplanation">'
        '<div class="ProductExplanation__commentBody">'
        f"{description}</div></div></div></body></html>"
    )


# --- schema.org dealer pages --------------------------------------------------------------------------


def dealer_url(listing: DemoListing) -> str:
    return f"{DEALER_HOST}/products/{listing.slug}.html"


def _product(listing: DemoListing) -> dict[str, Any]:
    product: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": ["Product", "IndividualProduct"] if listing.serial else "Product",
        "name": listing.title,
        "description": "\n".join(listing.body_lines),
        "image": list(listing.images),
        "sku": listing.id,
        "brand": {"@type": "Brand", "name": listing.make or "Korg"},
        "url": dealer_url(listing),
        "offers": {
            "@type": "Offer",
            "url": dealer_url(listing),
            "price": listing.price,
            "priceCurrency": listing.currency,
            "availability": "https://schema.org/InStock",
            "itemCondition": "https://schema.org/UsedCondition",
            "validFrom": listing.posted_at.isoformat(timespec="seconds"),
            "seller": {"@type": "Organization", "name": listing.seller},
        },
    }
    if listing.model:
        product["model"] = listing.model
    if listing.serial:
        product["serialNumber"] = listing.serial
    return product


def render_product_page(listing: DemoListing) -> str:
    """A dealer's product page: schema.org Product as JSON-LD (in an @graph) or as microdata."""
    e = html.escape
    head = f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(listing.title)}</title>'
    head += f'<meta property="og:type" content="product"><meta property="og:title" content="{e(listing.title)}">'
    if listing.markup == "microdata":
        images = "".join(f'<img itemprop="image" src="{e(url)}" alt="">' for url in listing.images)
        serial = f'<meta itemprop="serialNumber" content="{e(listing.serial)}">' if listing.serial else ""
        model = f'<meta itemprop="model" content="{e(listing.model)}">' if listing.model else ""
        # A content attribute keeps the line breaks that text inside a <div> would lose in extraction.
        description = e("\n".join(listing.body_lines))
        return (
            f"{head}</head><body>"
            '<div itemscope itemtype="https://schema.org/Product">'
            f'<h1 itemprop="name">{e(listing.title)}</h1>{images}'
            f'<meta itemprop="sku" content="{e(listing.id)}">{model}'
            f'<link itemprop="url" href="{e(dealer_url(listing))}">'
            '<span itemprop="brand" itemscope itemtype="https://schema.org/Brand">'
            f'<meta itemprop="name" content="{e(listing.make or "Korg")}"></span>'
            f'<meta itemprop="description" content="{description}">'
            '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
            f'<meta itemprop="priceCurrency" content="{e(listing.currency or "")}">'
            f'<span itemprop="price" content="{e(listing.price or "")}">{e(listing.price or "")}</span>'
            f'<meta itemprop="validFrom" content="{listing.posted_at.isoformat(timespec="seconds")}">'
            f"{serial}"
            '<div itemprop="seller" itemscope itemtype="https://schema.org/Organization">'
            f'<meta itemprop="name" content="{e(listing.seller or "")}"></div></div></div></body></html>'
        )
    graph = {"@context": "https://schema.org", "@graph": [_product(listing)]}
    data = json.dumps(graph, ensure_ascii=False).replace("</", "<\\/")
    return (
        f'{head}<script type="application/ld+json">{data}</script></head>'
        f"<body><h1>{e(listing.title)}</h1>"
        f"<p>{e(listing.price or '')} {e(listing.currency or '')}</p></body></html>"
    )


def render_product_list(page: list[DemoListing], page_number: int, per_page: int, total: int) -> str:
    """The dealer's list page: a schema.org ItemList of product URLs and `<link rel="next">`."""
    e = html.escape
    item_list = {
        "@context": "https://schema.org",
        "@type": "ItemList",
        "numberOfItems": len(page),
        "itemListElement": [
            {"@type": "ListItem", "position": index, "url": dealer_url(listing)}
            for index, listing in enumerate(page, start=1)
        ],
    }
    data = json.dumps(item_list, ensure_ascii=False).replace("</", "<\\/")
    more = page_number * per_page < total
    next_href = f"index.html?{urlencode({'page': page_number + 1, 'per_page': per_page})}"
    link = f'<link rel="next" href="{e(next_href)}">' if more else ""
    items = "".join(f'<li><a href="{e(dealer_url(listing))}">{e(listing.title)}</a></li>' for listing in page)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Synthesizers</title>'
        f'{link}<script type="application/ld+json">{data}</script></head><body><ul>{items}</ul></body></html>'
    )
