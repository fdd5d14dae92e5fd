"""Small text helpers shared by the page extractors: HTML to text, times, prices, query strings.

Scraped text is untrusted, so every helper here parses (never evaluates) and the HTML one never raises:
a listing whose description cannot be read still has a title worth keeping.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lxml import etree
from lxml import html as lxml_html

from crawler.pages.records import ListingRecord

JST = timezone(timedelta(hours=9), "JST")

# Elements whose start and end are line breaks in the text form, so "<p>a</p><p>b</p>" does not read "ab".
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Elements whose content is never reader-visible text.
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "object", "embed", "head", "title"})
# XML 1.0 forbids these code points; lxml refuses strings that contain them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_SPACES = re.compile(r"[^\S\n]+")
_INVISIBLE = re.compile(
    r"<!--.*?(?:-->|$)|<(script|style|noscript|template|iframe|object|embed|head|title)\b.*?(?:</\1\s*>|$)",
    re.IGNORECASE | re.DOTALL,
)
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD"})


def html_to_text(markup: str | bytes | None) -> str:
    """Visible text of an HTML fragment, one line per block or `<br>`, blank lines and runs of spaces removed.

    Line breaks matter: serial cues ("Serial No. 321045") must not run into the next sentence's digits.
    Never raises; unreadable markup falls back to a tag-stripping regex.
    """
    if markup is None:
        return ""
    if isinstance(markup, bytes):
        markup = markup.decode("utf-8", errors="replace")
    if not markup.strip():
        return ""
    cleaned = _XML_INVALID.sub(" ", markup)
    try:
        root = lxml_html.document_fromstring(f"<div>{cleaned}</div>")
        text = normalise_lines(_collect_text(root))
    except (etree.ParserError, ValueError, TypeError):
        text = ""
    if not text:
        # libxml2 gives up on pathological nesting; a tag-stripping regex still finds the words.
        visible = _INVISIBLE.sub("\n", cleaned)
        text = normalise_lines(html.unescape(re.sub(r"<[^>]*>", "\n", visible)))
    return text


def _collect_text(root: Any) -> str:
    """Iterative text walk (no recursion limit) that turns block boundaries and `<br>` into newlines."""
    # Drop invisible elements, comments and processing instructions but keep the text that follows them.
    etree.strip_elements(root, etree.Comment, etree.ProcessingInstruction, *_SKIP_TAGS, with_tail=False)
    pieces: list[str] = []
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if event == "start":
            if tag == "br" or tag in _BLOCK_TAGS:
                pieces.append("\n")
            if element.text and tag != "br":
                pieces.append(element.text)
        else:
            if tag in _BLOCK_TAGS:
                pieces.append("\n")
            if element.tail:
                pieces.append(element.tail)
    return "".join(pieces)


def normalise_lines(text: str) -> str:
    """Collapse spaces inside lines, strip each line and drop empty ones."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def parse_iso_time(value: str | None, default_tz: timezone = UTC) -> str | None:
    """ISO-8601 (with `Z`, millis or an offset) to an aware ISO string in the source's own offset.

    Seconds precision is enough for listings and keeps fixture comparisons stable. Naive times get
    `default_tz`. Unreadable values give None rather than an exception.
    """
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz)
    return moment.isoformat(timespec="seconds")


def parse_jst_time(value: str | None) -> str | None:
    """Yahoo's naive "YYYY-MM-DD HH:MM:SS" (Japan time) to an aware ISO string with +09:00."""
    return parse_iso_time(value, default_tz=JST)


def parse_rfc822_time(value: str | None) -> str | None:
    """RSS `pubDate` ("Fri, 15 Mar 2024 03:41:00 +0000") to an aware ISO string."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def unix_to_iso(value: str | int | float | None, tz: timezone = UTC) -> str | None:
    """Unix seconds (Yahoo's `data-auction-endtime`) to an aware ISO string in `tz`."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromtimestamp(float(value), tz=tz)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return moment.isoformat(timespec="seconds")


def normalise_price(value: Any, currency: str | None = None) -> str | None:
    """A price as a decimal string: "2450.00" for most currencies, "98000" for yen.

    Accepts numbers and strings with thousands separators or symbols ("98,000円", "$1,899.00"); a string
    that holds no number gives None. Floats go through `str` so 529.41 stays 529.41.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = re.sub(r"[^\d.\-]", "", value.replace(",", ""))
    else:
        return None
    if not text or text in {".", "-"}:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    if currency and currency.upper() in _ZERO_DECIMAL_CURRENCIES:
        return str(amount.quantize(Decimal(1)))
    return str(amount.quantize(Decimal("0.01")))


def query_params(url: str | None) -> dict[str, str] | None:
    """The query of a paging URL as a flat dict (last value wins); None for no URL."""
    if not url:
        return None
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def unique(values: Iterable[str | None]) -> tuple[str, ...]:
    """Non-empty strings in first-seen order, without repeats (image lists gather the same URL twice)."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and value.strip():
            seen.setdefault(value.strip(), None)
    return tuple(seen)


def dig(data: Any, *path: str | int) -> Any:
    """`data[a][b][c]` that gives None instead of raising when any step is missing or the wrong type."""
    current = data
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return None
            current = current[step]
        else:
            if not isinstance(current, Mapping):
                return None
            current = current.get(step)
    return current


def as_text(value: Any) -> str | None:
    """A JSON scalar as stripped text (ids arrive as numbers or strings); None for missing or empty."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def collect_records(
    items: list[Any], build: Callable[[Any], ListingRecord], label: str, id_key: str, id_label: str = ""
) -> tuple[list[ListingRecord], list[str]]:
    """Build a record from each item of an API page; a bad item becomes an error naming its place and id,
    and the good items around it are kept."""
    records: list[ListingRecord] = []
    errors: list[str] = []
    for index, item in enumerate(items, start=1):
        try:
            records.append(build(item))
        except ValueError as exc:
            item_id = as_text(item.get(id_key)) if isinstance(item, dict) else None
            errors.append(f"{label} {index}" + (f" ({id_label}{item_id})" if item_id else "") + f": {exc}")
    return records, errors
