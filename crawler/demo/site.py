"""The fixture site: one loopback HTTP server that serves every source in its real format.

Used by `korgwatch demo`, the spider tests, the benchmarks and the distributed-crawl tests, so that all of
them crawl the same pages offline. Each source is mounted under `/<source>` (base URL `root/<source>`) and
also answers at the root, since their paths do not overlap (`--base-url http://127.0.0.1:PORT` works).
Paging links point at the real hosts, as the real sources' do. Faults (429 once, 500, truncated, oversized
or slow responses) can be injected per path, and every request is logged so tests can count fetches.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import random
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from crawler.demo import render
from crawler.demo.render import DemoListing, slugify
from crawler.pages._text import JST, normalise_lines, normalise_price, parse_iso_time
from crawler.pages.records import ListingRecord

SOURCES = ("matrixsynth", "reverb", "ebay", "yahoo_auctions", "jsonld")
DEFAULT_PAGE_SIZE = {"matrixsynth": 25, "reverb": 24, "ebay": 50, "yahoo_auctions": 50, "jsonld": 10}
MAX_PAGE_SIZE = {"matrixsynth": 500, "reverb": 50, "ebay": 200, "yahoo_auctions": 100, "jsonld": 100}
# The demo data is a dozen listings per source; a small cap (as real APIs cap page sizes) still gives the demo
# several pages per source whatever page size the crawl config asks for.
DEMO_MAX_PAGE_SIZE = 4
DEMO_DATA = Path(__file__).parent / "data" / "demo_listings.yaml"
# The demo's listing photos (crawler/demo/make_photos.py), served under /photos/ on the site's own port.
DEMO_PHOTOS = Path(__file__).parent / "data" / "photos"
# Where a listing's relative image names ("photos/x.jpg") point until serve() knows the site's real root.
DEFAULT_PHOTO_ROOT = "https://photos.korgwatch.example"
PHOTO_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_PHOTO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ROBOTS_TXT = "User-agent: *\nAllow: /\n"
_EPOCH = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


# --- listings -----------------------------------------------------------------------------------------


def _default_id(source: str, index: int) -> str:
    """Ids in each source's own shape, so that extractors see what they see in the wild."""
    return {
        "matrixsynth": str(5550000000000000000 + index + 1),
        "reverb": str(77700000 + index + 1),
        "ebay": str(395500000000 + index + 1),
        "yahoo_auctions": f"x{1100000000 + index + 1}",
    }.get(source, f"KW-{index + 1:06d}")


def _moment(value: Any, index: int) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        moment = _EPOCH - timedelta(hours=index)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def photo_url(image: str, photo_root: str = DEFAULT_PHOTO_ROOT) -> str:
    """An image as a listing shows it: absolute URLs as given, a relative name ("photos/x.jpg") on the site."""
    if urlsplit(image).scheme:
        return image
    return f"{photo_root.rstrip('/')}/{image.lstrip('/')}"


def make_listing(
    source: str, raw: Mapping[str, Any], index: int = 0, photo_root: str = DEFAULT_PHOTO_ROOT
) -> DemoListing:
    """A DemoListing from a plain dict (the YAML data's shape); missing ids, dates and slugs are derived."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    title = str(raw.get("title") or "").strip()
    if not title:
        raise ValueError(f"{source} listing {index + 1}: no title")
    listing_id = str(raw.get("id") or _default_id(source, index))
    price = raw.get("price")
    currency = raw.get("currency") or ("JPY" if source == "yahoo_auctions" else "USD")
    images = raw.get("images") or []
    labels = raw.get("labels") or []
    return DemoListing(
        source=source,
        id=listing_id,
        title=title,
        body=str(raw.get("body") or ""),
        seller=str(raw["seller"]) if raw.get("seller") else None,
        price=normalise_price(price, currency) if price is not None else None,
        currency=str(currency),
        posted_at=_moment(raw.get("posted_at"), index),
        images=tuple(photo_url(str(url), photo_root) for url in images),
        serial=str(raw["serial"]) if raw.get("serial") else None,
        condition=str(raw["condition"]) if raw.get("condition") else None,
        make=str(raw["make"]) if raw.get("make") else None,
        model=str(raw["model"]) if raw.get("model") else None,
        year=str(raw["year"]) if raw.get("year") else None,
        labels=tuple(str(label) for label in labels),
        slug=str(raw.get("slug") or slugify(title)),
        markup=str(raw.get("markup") or "json-ld"),
    )


def load_demo_listings(path: Path = DEMO_DATA) -> dict[str, list[dict[str, Any]]]:
    """The demo's listings per source from the bundled YAML file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - set(SOURCES)
    if unknown:
        raise ValueError(f"{path}: unknown sources {sorted(unknown)}")
    return {source: list(data.get(source) or []) for source in SOURCES}


# Model name, serial block prefix, digits after it, price range (USD), typical title words.
_MODELS: tuple[tuple[str, str, int, int, int], ...] = (
    ("MS-20", "14", 4, 1200, 2400),
    ("MS-20", "439", 3, 1200, 2400),
    ("MS-10", "13", 4, 600, 1100),
    ("Polysix", "38", 4, 1500, 2900),
    ("Polysix", "46", 4, 1500, 2900),
    ("Mono/Poly", "37", 4, 1300, 2600),
    ("Mono/Poly", "47", 4, 1300, 2600),
    ("SQ-10", "15", 4, 900, 1800),
    ("Poly-61", "7", 5, 500, 1100),
    ("Delta", "28", 4, 500, 900),
    ("Sigma", "24", 4, 700, 1300),
)
_CUES = ("SN {s}", "s/n {s}", "S/N: {s}", "Serial # {s}", "serial number {s}", "Serial No. {s}")
_SELLERS = ("synth_attic", "vintage_keys", "analog_haven", "patchcord_co", "knob_twiddler", "retro_rig")


_GENERATED_PHOTOS = ("ms20-145502.jpg", "ms20-148802.jpg", "monopoly-475329.jpg", "poly61-730144.jpg")


def generate_listings(source: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` deterministic synthetic listings for benchmarks: the same (source, n, seed) gives the same data.

    Serials fit their model's number block; one listing in ten carries the serial in the body only.
    """
    rng = random.Random(f"{source}:{seed}")
    listings: list[dict[str, Any]] = []
    for index in range(n):
        model, prefix, digits, low, high = _MODELS[rng.randrange(len(_MODELS))]
        serial = f"{prefix}{rng.randrange(10**digits):0{digits}d}"
        cue = _CUES[rng.randrange(len(_CUES))].format(s=serial)
        in_title = index % 10 != 0
        title = f"Korg {model} Vintage Analog Synthesizer" + (f" {cue}" if in_title else "")
        body = f"Korg {model} in working order.\n{'Serial on the rear plate.' if in_title else cue}"
        price = f"{rng.randrange(low, high)}.00"
        listings.append(
            {
                "id": _default_id(source, index),
                "title": title,
                "body": body,
                "seller": _SELLERS[rng.randrange(len(_SELLERS))],
                "price": price if source != "yahoo_auctions" else str(int(float(price)) * 150),
                "currency": "JPY" if source == "yahoo_auctions" else "USD",
                "posted_at": (_EPOCH - timedelta(minutes=7 * index)).isoformat(),
                # each photo on one listing only: shown again under another serial it would be `photo_reused`
                "images": [f"photos/{_GENERATED_PHOTOS[index]}"] if index < len(_GENERATED_PHOTOS) else [],
                "serial": serial,
                "make": "Korg",
                "model": model,
                "labels": ["KORG", f"Korg {model}"],
                "slug": f"korg-{slugify(model)}-{index}",
            }
        )
    return listings


# --- what the extractors should read back ---------------------------------------------------------------


def expected_record(listing: DemoListing, *, detail: bool = True) -> ListingRecord:
    """The record the source's extractor should return for a rendered listing (core fields; `extra` empty).

    `detail=False` gives what a search page shows where it differs (eBay and Yahoo summaries).
    """
    body = normalise_lines(listing.body)
    posted = parse_iso_time(listing.posted_at.isoformat())
    price = normalise_price(listing.price, listing.currency) if listing.price is not None else None
    source = listing.source
    if source == "matrixsynth":
        return ListingRecord(
            source, render.matrixsynth_post_url(listing), listing.id, listing.title, body,
            listing.seller or "matrix", posted, None, None, listing.images,
        )  # fmt: skip
    if source == "reverb":
        return ListingRecord(
            source, f"https://reverb.com/item/{listing.id}-{listing.slug}", listing.id, listing.title, body,
            listing.seller, posted, price, listing.currency, listing.images,
        )  # fmt: skip
    if source == "ebay":
        if detail and listing.serial:
            body = f"{body}\nSerial Number: {listing.serial}" if body else f"Serial Number: {listing.serial}"
        return ListingRecord(
            source, f"https://www.ebay.com/itm/{listing.id}", listing.id, listing.title,
            body if detail else "",
            listing.seller or "unknown", parse_iso_time(listing.posted_at.astimezone(UTC).isoformat()),
            price or "0.00", listing.currency, listing.images,
        )  # fmt: skip
    if source == "yahoo_auctions":
        yen = str(int(float(listing.price or 0)))
        jst = parse_iso_time(listing.posted_at.astimezone(JST).isoformat())
        return ListingRecord(
            source, f"{render.YAHOO_HOST}/jp/auction/{listing.id}", listing.id, listing.title,
            body if detail else "", listing.seller, jst if detail else None, yen, "JPY",
            listing.images if detail else listing.images[:1],
        )  # fmt: skip
    if listing.serial:
        body = f"{body}\nSerial Number: {listing.serial}" if body else f"Serial Number: {listing.serial}"
    return ListingRecord(
        source, render.dealer_url(listing), listing.id, listing.title, body, listing.seller, posted, price,
        listing.currency, listing.images,
    )  # fmt: skip


# --- the site -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """What the site answers: status, headers and body bytes."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, data: Any, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(data).encode(), content_type)


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A paging parameter clamped to the source's range; a non-number is a client error (ValueError)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw)
    return max(low, min(high, value))


class FixtureSite:
    """Listings per source and the routes that render them; pure request → response, no sockets."""

    def __init__(
        self,
        listings_by_source: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        page_size: Mapping[str, int] | int | None = None,
        *,
        max_page_size: Mapping[str, int] | int | None = None,
        ebay_credentials: tuple[str, str] | None = None,
        token_ttl: int = 7200,
        photos: Mapping[str, bytes] | None = None,
    ) -> None:
        """`listings_by_source=None` loads the bundled demo data. `page_size` is each source's page size when
        a request gives none; `max_page_size` caps what a request may ask for (the real APIs' caps, or
        DEMO_MAX_PAGE_SIZE for the demo data). `ebay_credentials=None` accepts any non-empty id/secret.
        `photos` (name: bytes) are served under /photos/<name> besides the bundled demo photos."""
        raw = load_demo_listings() if listings_by_source is None else listings_by_source
        unknown = set(raw) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; known: {', '.join(SOURCES)}")
        self._raw = raw
        self.photos = dict(photos or {})
        self._make_listings(DEFAULT_PHOTO_ROOT)
        if isinstance(page_size, int):
            self.page_size = dict.fromkeys(SOURCES, page_size)
        else:
            self.page_size = {**DEFAULT_PAGE_SIZE, **(page_size or {})}
        if max_page_size is None and listings_by_source is None:
            max_page_size = DEMO_MAX_PAGE_SIZE
        if isinstance(max_page_size, int):
            self.max_page_size = dict.fromkeys(SOURCES, max_page_size)
        else:
            self.max_page_size = {**MAX_PAGE_SIZE, **(max_page_size or {})}
        self.page_size = {name: min(size, self.max_page_size[name]) for name, size in self.page_size.items()}
        self.ebay_credentials = ebay_credentials
        self.token_ttl = token_ttl
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def _make_listings(self, photo_root: str) -> None:
        self.listings: dict[str, list[DemoListing]] = {}
        for source in SOURCES:
            items = [
                make_listing(source, item, index, photo_root) for index, item in enumerate(self._raw.get(source) or [])
            ]
            items.sort(key=lambda listing: (listing.posted_at, listing.id), reverse=True)
            self.listings[source] = items
        self._by_id = {source: {item.id: item for item in items} for source, items in self.listings.items()}
        self._by_slug = {item.slug: item for item in self.listings["jsonld"]}
        self._search_cache: dict[tuple[str, tuple[str, ...]], list[DemoListing]] = {}

    def set_photo_root(self, root: str) -> None:
        """Point the listings' relative image names at `root` (the running site), so crawls fetch them here."""
        self._make_listings(root)

    def photo(self, name: str) -> Response | None:
        """A photo file by bare name: one given to the site, else a bundled demo photo; never another path."""
        if not _PHOTO_NAME.fullmatch(name) or ".." in name:
            return None
        body = self.photos.get(name)
        if body is None:
            path = DEMO_PHOTOS / name
            if not path.is_file():
                return None
            body = path.read_bytes()
        kind = PHOTO_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
        return Response(200, body, kind)

    # -- helpers ---------------------------------------------------------------------------------------

    def expected_records(self, source: str, *, detail: bool = True) -> list[ListingRecord]:
        """What the extractors should read back for a source, newest first (core fields)."""
        return [expected_record(listing, detail=detail) for listing in self.listings[source]]

    def search(self, source: str, query: str | None) -> list[DemoListing]:
        """Listings whose title, body, make or model contain every word of `query` (any case)."""
        terms = tuple((query or "").casefold().split())
        key = (source, terms)
        found = self._search_cache.get(key)
        if found is None:
            found = [
                listing
                for listing in self.listings[source]
                if all(
                    term in " ".join((listing.title, listing.body, listing.make or "", listing.model or "")).casefold()
                    for term in terms
                )
            ]
            self._search_cache[key] = found
        return found

    def issue_token(self) -> str:
        token = f"v^1.1#i^1#p^1#I^3#r^0#f^0#t^DEMO-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        return token

    def token_valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self._lock:
            expires = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        return expires is not None and time.monotonic() < expires

    # -- routing ---------------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Response:
        """Answer one request. `path` may carry a `/<source>` mount prefix."""
        if path == "/robots.txt":
            return Response(200, ROBOTS_TXT.encode())
        source, rest = None, path
        first = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        if first in SOURCES:
            source, rest = first, path[len(first) + 1 :] or "/"
            if rest == "/robots.txt":
                return Response(200, ROBOTS_TXT.encode())
        try:
            response = self._route(method, rest, params, headers, body, source)
        except ValueError as exc:
            return _json(400, {"error": "bad_request", "message": str(exc)})
        return response or _json(404, {"error": "not_found", "path": path})

    def _route(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        source: str | None,
    ) -> Response | None:
        def mounted(name: str) -> bool:
            return source in (None, name)

        if path.startswith("/photos/"):
            return self.photo(path.removeprefix("/photos/"))
        if mounted("matrixsynth") and path.startswith("/feeds/posts/"):
            return self._blogger(path, params)
        if mounted("reverb") and path.startswith("/api/listings"):
            return self._reverb(path, params)
        if mounted("ebay") and path == "/identity/v1/oauth2/token":
            return self._ebay_token(method, headers, body)
        if mounted("ebay") and path.startswith("/buy/browse/v1/"):
            return self._ebay(path, params, headers)
        if mounted("yahoo_auctions") and (path == "/search/search" or path.startswith("/jp/auction/")):
            return self._yahoo(path, params)
        if mounted("jsonld") and path.startswith(("/shop/", "/products/")):
            return self._dealer(path, params)
        return None

    def _blogger(self, path: str, params: Mapping[str, str]) -> Response | None:
        parts = path.strip("/").split("/")  # feeds, posts, default|summary, [-, label]
        if len(parts) < 3 or parts[2] not in ("default", "summary"):
            return None
        items = self.listings["matrixsynth"]
        if len(parts) == 5 and parts[3] == "-":
            label = unquote(parts[4])
            items = [listing for listing in items if label in listing.labels]
        elif len(parts) != 3:
            return None
        size = _int_param(params, "max-results", self.page_size["matrixsynth"], 1, self.max_page_size["matrixsynth"])
        start = _int_param(params, "start-index", 1, 1, 10**9)
        page = items[start - 1 : start - 1 + size]
        alt = params.get("alt", "atom")
        if alt == "json":
            text = render.render_blogger_json(page, start, size, len(items))
            return Response(200, text.encode(), "application/json; charset=UTF-8")
        if alt == "rss":
            text = render.render_blogger_rss(page, start, size, len(items))
            return Response(200, text.encode(), "application/rss+xml; charset=UTF-8")
        if alt not in ("atom", ""):
            raise ValueError(f"alt={alt} is not served by the fixture site")
        text = render.render_blogger_atom(page, start, size, len(items))
        return Response(200, text.encode(), "application/atom+xml; charset=UTF-8")

    def _reverb(self, path: str, params: Mapping[str, str]) -> Response | None:
        headers = (("X-Reverb-Version", "3.0"),)
        if path in ("/api/listings", "/api/listings/", "/api/listings/all"):
            per_page = _int_param(params, "per_page", self.page_size["reverb"], 1, self.max_page_size["reverb"])
            number = _int_param(params, "page", 1, 1, 10**6)
            found = self.search("reverb", params.get("query"))
            page = found[(number - 1) * per_page : number * per_page]
            query = {k: v for k, v in params.items() if k not in ("page", "per_page")}
            text = render.render_reverb_page(page, query, number, per_page, len(found))
            return Response(200, text.encode(), "application/hal+json", headers)
        listing_ref = path.removeprefix("/api/listings/").split("-", 1)[0]
        listing = self._by_id["reverb"].get(listing_ref)
        if listing is None:
            return None
        text = json.dumps(render.reverb_listing(listing, detail=True), ensure_ascii=False)
        return Response(200, text.encode(), "application/hal+json", headers)

    def _ebay_token(self, method: str, headers: Mapping[str, str], body: bytes) -> Response:
        if method != "POST":
            return _json(405, {"error": "invalid_request", "error_description": "use POST"})
        authorization = headers.get("authorization", "")
        try:
            client_id, _, secret = (
                base64.b64decode(authorization.removeprefix("Basic ").strip()).decode().partition(":")
            )
        except ValueError:
            client_id = secret = ""
        accepted = (
            authorization.startswith("Basic ")
            and client_id
            and secret
            and (self.ebay_credentials is None or (client_id, secret) == self.ebay_credentials)
        )
        if not accepted:
            return _json(401, {"error": "invalid_client", "error_description": "client authentication failed"})
        form = dict(parse_qsl(body.decode("utf-8", errors="replace")))
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type", "error_description": "grant type unsupported"})
        token = self.issue_token()
        return _json(
            200,
            {"access_token": token, "expires_in": self.token_ttl, "token_type": "Application Access Token"},
        )

    def _ebay(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response | None:
        if not self.token_valid(headers.get("authorization")):
            return _json(
                401,
                {
                    "errors": [
                        {
                            "errorId": 1001,
                            "domain": "OAuth",
                            "category": "REQUEST",
                            "message": "Invalid access token",
                            "longMessage": "Invalid access token. Check the Authorization header.",
                        }
                    ]
                },
            )
        if path == "/buy/browse/v1/item_summary/search":
            limit = _int_param(params, "limit", self.page_size["ebay"], 1, self.max_page_size["ebay"])
            offset = _int_param(params, "offset", 0, 0, 10**7)
            found = self.search("ebay", params.get("q"))
            query = {k: v for k, v in params.items() if k not in ("limit", "offset")}
            text = render.render_ebay_search(found[offset : offset + limit], query, limit, offset, len(found))
            return Response(200, text.encode(), "application/json")
        if path.startswith("/buy/browse/v1/item/"):
            item_id = unquote(path.removeprefix("/buy/browse/v1/item/"))
            legacy = item_id.split("|")[1] if item_id.count("|") == 2 else item_id
            listing = self._by_id["ebay"].get(legacy)
            if listing is None:
                return _json(404, {"errors": [{"errorId": 11001, "message": f"item {item_id} not found"}]})
            return Response(200, json.dumps(render.ebay_item(listing, detail=True)).encode(), "application/json")
        return None

    def _yahoo(self, path: str, params: Mapping[str, str]) -> Response | None:
        html_type = "text/html; charset=utf-8"
        if path == "/search/search":
            size = _int_param(params, "n", self.page_size["yahoo_auctions"], 1, self.max_page_size["yahoo_auctions"])
            start = _int_param(params, "b", 1, 1, 10**7)
            found = self.search("yahoo_auctions", params.get("p"))
            query = {k: v for k, v in params.items() if k not in ("b", "n")}
            text = render.render_yahoo_search(found[start - 1 : start - 1 + size], query, start, size, len(found))
            return Response(200, text.encode(), html_type)
        listing = self._by_id["yahoo_auctions"].get(path.removeprefix("/jp/auction/").strip("/"))
        if listing is None:
            return None
        return Response(200, render.render_yahoo_item(listing).encode(), html_type)

    def _dealer(self, path: str, params: Mapping[str, str]) -> Response | None:
        html_type = "text/html; charset=utf-8"
        if path in ("/shop/", "/shop/index.html"):
            per_page = _int_param(params, "per_page", self.page_size["jsonld"], 1, self.max_page_size["jsonld"])
            number = _int_param(params, "page", 1, 1, 10**6)
            items = self.listings["jsonld"]
            page = items[(number - 1) * per_page : number * per_page]
            return Response(200, render.render_product_list(page, number, per_page, len(items)).encode(), html_type)
        slug = path.rsplit("/", 1)[-1].removesuffix(".html")
        listing = self._by_slug.get(slug)
        if listing is None:
            return None
        return Response(200, render.render_product_page(listing).encode(), html_type)


# --- the server ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Fault:
    """A misbehaviour for requests whose path matches `pattern` (fnmatch; with "?" part, the query too).

    `status` answers with that code (429 adds `Retry-After: retry_after`); `truncate` cuts the body to that
    fraction (the HTTP framing stays correct: a garbled document, not a broken connection); `pad_to` grows
    the body to that many bytes with trailing whitespace; `delay` sleeps first. `times=None` means always.
    """

    pattern: str
    status: int | None = None
    retry_after: int | None = None
    truncate: float | None = None
    pad_to: int | None = None
    delay: float = 0.0
    times: int | None = None

    def matches(self, path: str, query: str) -> bool:
        if "?" in self.pattern:
            return fnmatch.fnmatchcase(f"{path}?{query}", self.pattern)
        return fnmatch.fnmatchcase(path, self.pattern)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the server saw it, for tests that count fetches."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    time: float
    source: str | None


@dataclass(slots=True)
class RunningSite:
    """A started fixture site: its root URL, request log and fault switches."""

    site: FixtureSite
    root: str
    requests: list[LoggedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def base_url(self, source: str, *, prefixed: bool = True) -> str:
        """The URL a spider's `base_url` should be for `source` (its mount, or the bare root)."""
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        return f"{self.root}/{source}" if prefixed else self.root

    def inject(self, pattern: str, **fault: Any) -> Fault:
        """Add a fault, e.g. `inject("/reverb/api/listings", status=429, retry_after=1, times=1)`."""
        added = Fault(pattern, **fault)
        with self.lock:
            self.faults.append(added)
        return added

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def count(self, path: str | None = None, *, source: str | None = None, status: int | None = None) -> int:
        """How many logged requests match (path as fnmatch pattern, without the query)."""
        with self.lock:
            log = list(self.requests)
        return sum(
            1
            for entry in log
            if (path is None or fnmatch.fnmatchcase(entry.path, path))
            and (source is None or entry.source == source)
            and (status is None or entry.status == status)
        )

    def _take_fault(self, path: str, query: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(path, query) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _log(self, entry: LoggedRequest) -> None:
        with self.lock:
            self.requests.append(entry)


def _source_of(site: FixtureSite, path: str) -> str | None:
    first = path.split("/", 2)[1] if path.startswith("/") and path.count("/") >= 1 else ""
    if first in SOURCES:
        return first
    for source, prefixes in (
        ("matrixsynth", ("/feeds/",)),
        ("reverb", ("/api/listings",)),
        ("ebay", ("/identity/", "/buy/")),
        ("yahoo_auctions", ("/search/", "/jp/auction")),
        ("jsonld", ("/shop/", "/products/")),
    ):
        if path.startswith(prefixes):
            return source
    return None


def _handler_class(running: RunningSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "korgwatch-fixture/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request log is the record."""

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            headers = {key.lower(): value for key, value in self.headers.items()}
            fault = running._take_fault(parts.path, parts.query)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.status:
                extra = (("Retry-After", str(fault.retry_after)),) if fault.retry_after is not None else ()
                response = Response(fault.status, f"fault injected: {fault.status}\n".encode(), headers=extra)
            else:
                response = running.site.handle(method, parts.path, params, headers, body)
            payload = response.body
            if fault and fault.truncate is not None:
                payload = payload[: int(len(payload) * fault.truncate)]
            if fault and fault.pad_to is not None and len(payload) < fault.pad_to:
                payload += b" " * (fault.pad_to - len(payload))
            # Logged before the answer goes out, so a client that has its response also sees the entry.
            running._log(
                LoggedRequest(
                    method,
                    parts.path,
                    params,
                    response.status,
                    time.time(),
                    _source_of(running.site, parts.path),
                )
            )
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def serve(site: FixtureSite | None = None, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningSite]:
    """Run `site` on a background thread for the `with` block; port 0 picks a free port."""
    site = site or FixtureSite()
    running = RunningSite(site=site, root="")
    server = _Server((host, port), _handler_class(running))
    bound_host, bound_port = server.server_address[:2]
    host_text = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
    running.root = f"http://{host_text}:{bound_port}"
    site.set_photo_root(running.root)
    thread = threading.Thread(target=server.serve_forever, name="korgwatch-fixture-site", daemon=True)
    thread.start()
    try:
        yield running
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
