"""The one shape every page extractor returns, so that spiders, `korgwatch ingest` and the demo agree.

Pure data: no Scrapy import here or in any module of `crawler/pages/`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ListingRecord:
    """A listing as a source shows it, before any analysis.

    `posted_at` is ISO-8601 with an offset (UTC where the source gives UTC; JST sources are converted to an
    aware time). `price` is a decimal string ("2450.00") so no float rounding creeps in. `extra` keeps the
    source's own fields that matter to a reviewer (condition, make/model fields, item specifics, ...).
    """

    source: str
    url: str
    external_id: str
    title: str
    body: str = ""
    seller: str | None = None
    posted_at: str | None = None
    price: str | None = None
    currency: str | None = None
    images: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON Lines form read by `korgwatch ingest`."""
        data = asdict(self)
        data["images"] = list(self.images)
        return data


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one fetched document yields: the listings on it, where to go next, and what went wrong.

    `next_params` holds the paging parameters of the next page (e.g. {"start-index": "4", "max-results": "3"}),
    never a host, so that a spider rebuilds the next URL against its configured base URL.
    `detail_urls` are pages to fetch for the full record (Yahoo item pages), already absolute.
    `errors` name what could not be read ("entry 3: no title") without losing the good records.
    """

    records: tuple[ListingRecord, ...] = ()
    next_params: dict[str, str] | None = None
    total: int | None = None
    detail_urls: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
