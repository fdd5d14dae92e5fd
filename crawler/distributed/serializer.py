"""JSON, not pickle, for the requests in Redis (`SCHEDULER_SERIALIZER = "crawler.distributed.serializer"`).

scrapy-redis pickles requests by default, so anyone able to write to the queue could run code on every worker.
This module gives scrapy-redis the `loads`/`dumps` pair it asks for, encoding the few non-JSON values our
requests carry (bytes of headers and bodies, the search summary a detail request keeps, datetimes) as tagged
objects, and refusing request classes that are not Scrapy's own.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from crawler.pages.records import ListingRecord

ALLOWED_REQUEST_CLASSES = frozenset(
    {"scrapy.http.request.form.FormRequest", "scrapy.http.request.json_request.JsonRequest"}
)
_BYTES, _RECORD, _DATETIME, _TUPLE = "__bytes__", "__listing_record__", "__datetime__", "__tuple__"


class UnsafeRequestError(ValueError):
    """A queued request that names a class we would have to import to rebuild it."""


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, ListingRecord):
        return {_RECORD: _plain(value.to_dict())}
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, tuple):
        return {_TUPLE: [_plain(v) for v in value]}
    if isinstance(value, dict):
        return {str(k.decode("latin-1") if isinstance(k, bytes) else k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot queue a request carrying {type(value).__name__}")


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _encode(value)


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((key, value),) = obj.items()
        if key == _BYTES:
            return base64.b64decode(value)
        if key == _RECORD:
            return ListingRecord(**{**value, "images": tuple(value.get("images") or ())})
        if key == _DATETIME:
            return datetime.fromisoformat(value)
        if key == _TUPLE:
            return tuple(value)
    return obj


def dumps(request_dict: dict[str, Any]) -> bytes:
    """A request's `to_dict()` as UTF-8 JSON."""
    return json.dumps(_plain(request_dict), separators=(",", ":")).encode("utf-8")


def loads(data: bytes | str) -> dict[str, Any]:
    """The `to_dict()` back; a `_class` other than Scrapy's request classes is refused."""
    request_dict: dict[str, Any] = json.loads(data, object_hook=_decode)
    cls = request_dict.get("_class")
    if cls is not None and cls not in ALLOWED_REQUEST_CLASSES:
        raise UnsafeRequestError(f"queued request names class {cls!r}; only Scrapy's request classes are rebuilt")
    return request_dict
