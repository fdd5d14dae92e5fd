"""Matrixsynth (a Blogger blog): posts from the Atom, GData JSON and RSS feeds as listing records.

Feeds are preferred over HTML (sources.md §1): `/search` pages are disallowed by Blogger's robots.txt,
and the feeds carry stable post ids, labels and openSearch paging. A bad entry is reported in
`errors` without losing its neighbours; a truncated feed keeps the entries before the cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from lxml import etree
from lxml import html as lxml_html

from crawler.pages._text import (
    as_text,
    html_to_text,
    parse_iso_time,
    parse_rfc822_time,
    query_params,
    unique,
)
from crawler.pages.records import ListingRecord, PageResult

SOURCE = "matrixsynth"

_POST_ID = re.compile(r"blog-(?P<blog>\d+)\.post-(?P<post>\d+)")
_IMAGE_PATH = re.compile(r"\.(?:jpe?g|png|gif|webp)(?:$|[?#])", re.IGNORECASE)
_RSS_AUTHOR = re.compile(r"\((?P<name>[^()]*)\)\s*$")


class _EntryError(ValueError):
    """One entry could not be read; the message names what is missing."""


def _local(tag: Any) -> str:
    """The local name of an lxml tag, so `openSearch:` matches whatever namespace URI the feed uses."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(element: Any, name: str) -> list[Any]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: Any, name: str) -> Any | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element: Any, name: str) -> str | None:
    child = _child(element, name)
    if child is None:
        return None
    return (child.text or "").strip() or None


def _post_ids(entry_id: str | None) -> tuple[str, str]:
    """(postId, blogId) from `tag:blogger.com,1999:blog-<blogId>.post-<postId>`."""
    match = _POST_ID.search(entry_id or "")
    if not match:
        raise _EntryError(f"no Blogger post id in {entry_id!r}")
    return match["post"], match["blog"]


def images_and_links(markup: str | None) -> tuple[list[str], list[str]]:
    """Image URLs of a post body, one per picture, and its other links ("via this auction" points at the
    original listing, which helps matching across sources).

    Where an `<img>` is wrapped in a link to an image (Blogger links `/s1600/` around an `/s640/` preview)
    the full-size link target is taken, else the `src`.
    """
    if not markup or not markup.strip():
        return [], []
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return [], []
    found: list[str] = []
    links = [
        a.get("href", "")
        for a in root.iter("a")
        if a.get("href", "").startswith(("http://", "https://")) and not _IMAGE_PATH.search(a.get("href", ""))
    ]
    for img in root.iter("img"):
        parent = img.getparent()
        href = parent.get("href") if parent is not None and parent.tag == "a" else None
        if href and _IMAGE_PATH.search(href):
            found.append(href)
        elif img.get("src"):
            found.append(img.get("src", ""))
    return found, links


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _build_record(
    *,
    entry_id: str | None,
    title: str | None,
    body_html: str | None,
    body_is_html: bool,
    url: str | None,
    published: str | None,
    updated: str | None,
    author: str | None,
    labels: list[str],
    thumbnail: str | None,
    comments: str | None,
) -> ListingRecord:
    """The record for one post, whatever the feed format; _EntryError names a missing field."""
    post_id, blog_id = _post_ids(entry_id)
    if not title or not title.strip():
        raise _EntryError("no title")
    if not url:
        raise _EntryError("no post URL (rel=alternate link)")
    body = html_to_text(body_html) if body_is_html else html_to_text(_escape_text(body_html or ""))
    images, links = images_and_links(body_html) if body_is_html else ([], [])
    extra: dict[str, Any] = {"blog_id": blog_id, "labels": labels}
    if links:
        extra["links"] = list(unique(links))
    if updated:
        extra["updated_at"] = parse_iso_time(updated)
    count = _int_or_none(comments)
    if count is not None:
        extra["comments"] = count
    return ListingRecord(
        source=SOURCE,
        url=url,
        external_id=post_id,
        title=title.strip(),
        body=body,
        seller=author.strip() if author and author.strip() else None,
        posted_at=parse_iso_time(published),
        images=unique([*images, thumbnail]),
        extra=extra,
    )


def _escape_text(text: str) -> str:
    """Plain-text summaries keep their line breaks when pushed through the HTML-to-text helper."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")


def _name_entry(index: int, entry_id: str | None) -> str:
    return f"entry {index}" + (f" ({entry_id})" if entry_id else "")


# --- Atom ---------------------------------------------------------------------------------------------


def _parse_xml(text: str | bytes) -> tuple[Any | None, list[str]]:
    """The recovered XML tree and the syntax errors met on the way (a truncated feed yields both)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    errors: list[str] = []
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return None, [f"feed: not readable XML: {exc}"]
    log = [entry for entry in parser.error_log if entry.level >= etree.ErrorLevels.ERROR]
    if log:
        first = log[0]
        errors.append(
            f"feed: XML syntax error at line {first.line}, column {first.column}: {first.message.strip()}"
            f" ({len(log)} error(s); entries after the damage may be missing or incomplete)"
        )
    if root is None:
        errors.append("feed: no XML document")
    return root, errors


def _atom_entry(entry: Any) -> ListingRecord:
    links: dict[str | None, str | None] = {}
    for link in _children(entry, "link"):
        links.setdefault(link.get("rel"), link.get("href"))
    content = _child(entry, "content")
    summary = _child(entry, "summary")
    if content is not None:
        node, kind = content, content.get("type", "text")
    elif summary is not None:
        node, kind = summary, summary.get("type", "text")
    else:
        node, kind = None, "text"
    if node is not None and kind == "xhtml":
        inner = "".join(etree.tostring(child, encoding="unicode") for child in node)
        body_html: str | None = inner
        is_html = True
    else:
        body_html = node.text if node is not None else None
        is_html = kind == "html"
    author = _child(entry, "author")
    thumbnail = _child(entry, "thumbnail")
    return _build_record(
        entry_id=_child_text(entry, "id"),
        title=_child_text(entry, "title"),
        body_html=body_html,
        body_is_html=is_html,
        url=links.get("alternate"),
        published=_child_text(entry, "published"),
        updated=_child_text(entry, "updated"),
        author=_child_text(author, "name") if author is not None else None,
        labels=[c.get("term") for c in _children(entry, "category") if c.get("term")],
        thumbnail=thumbnail.get("url") if thumbnail is not None else None,
        comments=_child_text(entry, "total"),
    )


def parse_atom_feed(text: str | bytes) -> PageResult:
    """Posts of one Blogger Atom page (`/feeds/posts/default`), its next-page parameters and total."""
    root, errors = _parse_xml(text)
    if root is None:
        return PageResult(errors=tuple(errors))
    if _local(root.tag) != "feed":
        return PageResult(errors=(*errors, f"feed: root element is <{_local(root.tag)}>, not an Atom <feed>"))
    return _xml_page(root, "entry", "id", _atom_entry, errors)


def _xml_page(
    container: Any, item_name: str, id_name: str, build: Callable[[Any], ListingRecord], errors: list[str]
) -> PageResult:
    """The page of an XML feed (Atom `<feed>` or RSS `<channel>`): a record per item, a bad item reported by
    place and id without losing the others, the `rel=next` link's parameters and the openSearch total."""
    records: list[ListingRecord] = []
    for index, item in enumerate(_children(container, item_name), start=1):
        try:
            records.append(build(item))
        except _EntryError as exc:
            errors.append(f"{_name_entry(index, _child_text(item, id_name))}: {exc}")
    next_href = next((link.get("href") for link in _children(container, "link") if link.get("rel") == "next"), None)
    return PageResult(
        records=tuple(records),
        next_params=query_params(next_href),
        total=_int_or_none(_child_text(container, "totalResults")),
        errors=tuple(errors),
    )


# --- RSS ----------------------------------------------------------------------------------------------


def _rss_item(item: Any) -> ListingRecord:
    author = _child_text(item, "author") or _child_text(item, "creator")
    if author:
        match = _RSS_AUTHOR.search(author)
        author = match["name"] if match else author
    thumbnail = _child(item, "thumbnail")
    # `atom:link` elements share the local name but carry no text; the RSS `<link>` holds the post URL.
    link = next(((c.text or "").strip() for c in _children(item, "link") if (c.text or "").strip()), None)
    return _build_record(
        entry_id=_child_text(item, "guid"),
        title=_child_text(item, "title"),
        body_html=_child_text(item, "description"),
        body_is_html=True,
        url=link,
        published=parse_rfc822_time(_child_text(item, "pubDate")),
        updated=_child_text(item, "updated"),
        author=author,
        labels=[(c.text or "").strip() for c in _children(item, "category") if (c.text or "").strip()],
        thumbnail=thumbnail.get("url") if thumbnail is not None else None,
        comments=_child_text(item, "total"),
    )


def parse_rss_feed(text: str | bytes) -> PageResult:
    """Posts of a Blogger RSS 2.0 page (`?alt=rss`); paging from an `atom:link rel=next` when present."""
    root, errors = _parse_xml(text)
    if root is None:
        return PageResult(errors=tuple(errors))
    channel = _child(root, "channel")
    if channel is None:
        return PageResult(errors=(*errors, "feed: no RSS <channel>"))
    return _xml_page(channel, "item", "guid", _rss_item, errors)


# --- GData JSON ---------------------------------------------------------------------------------------


def _t(node: Any) -> str | None:
    """The `$t` text of a GData JSON node (`{"$t": "..."}`), or a bare string."""
    if isinstance(node, dict):
        value = node.get("$t")
        return value if isinstance(value, str) else None
    return node if isinstance(node, str) else None


def _json_entry(entry: Any) -> ListingRecord:
    if not isinstance(entry, dict):
        raise _EntryError(f"not an object but {type(entry).__name__}")
    links: dict[Any, Any] = {}
    for link in entry.get("link") or []:
        if isinstance(link, dict):
            links.setdefault(link.get("rel"), link.get("href"))
    content = entry.get("content") if isinstance(entry.get("content"), dict) else entry.get("summary")
    kind = content.get("type", "text") if isinstance(content, dict) else "text"
    authors = entry.get("author") or []
    author = _t(authors[0].get("name")) if authors and isinstance(authors[0], dict) else None
    thumbnail = entry.get("media$thumbnail")
    return _build_record(
        entry_id=_t(entry.get("id")),
        title=_t(entry.get("title")),
        body_html=_t(content),
        body_is_html=kind in {"html", "xhtml"},
        url=links.get("alternate"),
        published=_t(entry.get("published")),
        updated=_t(entry.get("updated")),
        author=author,
        labels=[c["term"] for c in entry.get("category") or [] if isinstance(c, dict) and c.get("term")],
        thumbnail=thumbnail.get("url") if isinstance(thumbnail, dict) else None,
        comments=_t(entry.get("thr$total")),
    )


def parse_json_feed(text: str | bytes) -> PageResult:
    """Posts of one Blogger GData JSON page (`?alt=json`): texts are `{"$t": ...}`, numbers are strings."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        return PageResult(errors=(f"feed: not readable JSON: {exc}",))
    feed = data.get("feed") if isinstance(data, dict) else None
    if not isinstance(feed, dict):
        return PageResult(errors=("feed: no 'feed' object",))
    records: list[ListingRecord] = []
    errors: list[str] = []
    entries = feed.get("entry") or []
    if not isinstance(entries, list):
        entries = []
        errors.append("feed: 'entry' is not a list")
    for index, entry in enumerate(entries, start=1):
        try:
            records.append(_json_entry(entry))
        except _EntryError as exc:
            entry_id = _t(entry.get("id")) if isinstance(entry, dict) else None
            errors.append(f"{_name_entry(index, entry_id)}: {exc}")
    next_href = next(
        (link.get("href") for link in feed.get("link") or [] if isinstance(link, dict) and link.get("rel") == "next"),
        None,
    )
    total = next((_t(value) for key, value in feed.items() if key.endswith("$totalResults")), None)
    return PageResult(
        records=tuple(records),
        next_params=query_params(next_href),
        total=_int_or_none(as_text(total)),
        errors=tuple(errors),
    )
