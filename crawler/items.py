"""The item the spiders yield: a listing record in itemadapter's dataclass form.

Flat fields (not a nested record) so that Spidermon's field coverage sees `title`, `url` and `posted_at`.
`crawl_run` is not part of the listing: a distributed worker tags each item with the run that found it.
`photos` is not either: the photos pipeline (crawler/photos.py) puts there what it did with each image URL,
and the ingest pipeline stores it beside the listing; None means the photos were not looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from crawler.pages.records import ListingRecord


@dataclass(slots=True)
class ListingItem:
    """One listing as crawled, convertible to and from the extractors' frozen `ListingRecord`."""

    source: str
    url: str
    external_id: str
    title: str
    body: str = ""
    seller: str | None = None
    posted_at: str | None = None
    price: str | None = None
    currency: str | None = None
    images: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    crawl_run: int | None = None
    photos: list[Any] | None = None

    @classmethod
    def from_record(cls, record: ListingRecord) -> ListingItem:
        return cls(**{f.name: getattr(record, f.name) for f in fields(ListingRecord)} | {"images": list(record.images)})

    def to_record(self) -> ListingRecord:
        values = {f.name: getattr(self, f.name) for f in fields(ListingRecord)}
        values["images"] = tuple(self.images)
        values["extra"] = dict(self.extra)
        return ListingRecord(**values)
