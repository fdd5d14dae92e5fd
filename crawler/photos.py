"""Listing photos fetched by the crawl itself, through Scrapy's media pipeline, and kept as evidence.

A FilesPipeline subclass, so each photo request goes through the same downloader as the pages: robots.txt,
the per-domain delay, AutoThrottle, retries with backoff, the User-Agent. Nothing is trusted: a file must be
one of the accepted types by Pillow's own reading (not its extension or Content-Type), within the byte and
pixel limits (Pillow's decompression-bomb check is on, its warning raised as an error), and fully decodable.
A good file is kept content-addressed (crawler/photo_store.py) with its EXIF-free thumbnail and fingerprints;
every position of the listing gets an outcome (kept, refused or failed, with the reason) in `item.photos`,
which the ingest pipeline stores with the listing (db/photos.py). A URL the store already keeps for this
source is not requested again.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError
from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.files import FilesPipeline
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from twisted.internet.threads import deferToThread

from crawler.fingerprints import fingerprint
from crawler.items import ListingItem
from crawler.photo_store import make_thumbnail, photo_dir, store_photo
from crawler.sources import PhotoLimits
from db.photos import FetchedPhoto, KeptPhoto

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

POSITION_META = "korgwatch_photo_position"
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
STATS_PREFIX = "korgwatch/photos"


class PhotoProblem(Exception):
    """Why a photo was not kept; `status` is what listing_photos records."""

    status = "failed"


class PhotoRefused(PhotoProblem):
    """The file broke a limit (size, type, pixels) or is not a readable image."""

    status = "refused"


class PhotoFailed(PhotoProblem):
    """The fetch itself failed (HTTP error, timeout, robots.txt)."""


@dataclass(frozen=True, slots=True)
class InspectedPhoto:
    """What was read from a good file: what `photos` keeps about it."""

    sha256: str
    mime: str
    width: int
    height: int
    size: int
    phash: int
    dhash: int


def limits_from_settings(value: Any) -> PhotoLimits:
    """The source's limits as crawl_settings put them (a dict), or the defaults."""
    if isinstance(value, PhotoLimits):
        return value
    if isinstance(value, dict):
        values = dict(value)
        values["types"] = tuple(values.get("types") or PhotoLimits().types)
        return PhotoLimits(**values)
    return PhotoLimits()


def inspect_photo(body: bytes, limits: PhotoLimits) -> tuple[InspectedPhoto, bytes]:
    """Read and check a downloaded file; the facts kept about it and its thumbnail, or PhotoRefused(why)."""
    if len(body) > limits.max_bytes:
        raise PhotoRefused(f"{len(body)} bytes, over the limit of {limits.max_bytes}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(BytesIO(body))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRefused(f"decompression bomb: {exc}") from None
        except UnidentifiedImageError:
            raise PhotoRefused("not an image Pillow can read") from None
        with image:
            kind = (image.format or "").lower()
            if kind not in limits.types:
                raise PhotoRefused(f"type {kind or 'unknown'} not accepted ({', '.join(limits.types)})")
            width, height = image.size
            if width * height > limits.max_pixels:
                raise PhotoRefused(
                    f"{width}x{height} pixels, over the limit of {limits.max_pixels} (decompression bomb)"
                )
            try:
                image.seek(0)  # an animation's first frame
                image.load()
                prints = fingerprint(image)
                thumbnail = make_thumbnail(image)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
                raise PhotoRefused(f"unreadable image data: {exc}") from None
    inspected = InspectedPhoto(
        sha256=hashlib.sha256(body).hexdigest(),
        mime=MIME[kind],
        width=width,
        height=height,
        size=len(body),
        phash=prints.phash,
        dhash=prints.dhash,
    )
    return inspected, thumbnail


def keep_photo(root: Path, body: bytes, limits: PhotoLimits) -> InspectedPhoto:
    """Inspect a file and keep it (and its thumbnail) under its sha256: the work of one worker thread."""
    inspected, thumbnail = inspect_photo(body, limits)
    store_photo(root, inspected.sha256, body, thumbnail)
    return inspected


def _http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class PhotosPipeline(FilesPipeline):
    """Fetch, check and keep each listing's photos; put one FetchedPhoto per position in `item.photos`.

    Off (NotConfigured) when KORGWATCH_PHOTOS is false or the source's `photos.enabled` is.
    """

    LOG_FAILED_RESULTS = False  # every outcome is recorded in the store, with its reason

    def __init__(self, store_uri: str, *, crawler: Crawler) -> None:
        super().__init__(store_uri, crawler=crawler)
        settings = crawler.settings
        self.root = Path(store_uri)
        self.limits = limits_from_settings(settings.get("KORGWATCH_PHOTO_LIMITS"))
        self.db_url: str | None = settings.get("KORGWATCH_DB_URL")
        self.kept: dict[str, KeptPhoto] = {}
        self.problems: dict[str, PhotoProblem] = {}
        self.retry_enabled = settings.getbool("RETRY_ENABLED")
        self.retry_codes = {int(code) for code in settings.getlist("RETRY_HTTP_CODES")}
        self.retry_exceptions: tuple[type[BaseException], ...] = tuple(
            load_object(path) if isinstance(path, str) else path for path in settings.getlist("RETRY_EXCEPTIONS")
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        limits = limits_from_settings(settings.get("KORGWATCH_PHOTO_LIMITS"))
        if not settings.getbool("KORGWATCH_PHOTOS", True) or not limits.enabled:
            logger.info("photos are off for this crawl of %s", getattr(crawler.spidercls, "name", "?"))
            raise NotConfigured  # without a message: Scrapy would warn about an expected choice
        root = settings.get("KORGWATCH_PHOTO_DIR") or str(photo_dir())
        return cls(root, crawler=crawler)

    def open_spider(self, spider: Any = None) -> None:
        super().open_spider()
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # in this crawl process, always
        source = getattr(self.crawler.spider, "name", None)
        if self.db_url and source:
            self.kept = _load_kept(self.db_url, source)

    # -- what to fetch ------------------------------------------------------------------------------------

    def get_media_requests(self, item: Any, info: FilesPipeline.SpiderInfo) -> list[Request]:
        """One request per photo not yet kept, up to the limit; the other positions get their outcome now."""
        if not isinstance(item, ListingItem):
            return []
        now = datetime.now(UTC)
        plan: list[FetchedPhoto | None] = []
        requests: list[Request] = []
        for position, url in enumerate(item.images):
            known = self.kept.get(url)
            if position >= self.limits.per_listing:
                reason = f"over the limit of {self.limits.per_listing} photos per listing: not fetched"
                plan.append(FetchedPhoto(position, url, "refused", now, reason))
            elif not _http_url(url):
                plan.append(FetchedPhoto(position, url, "refused", now, "not an http(s) URL: not fetched"))
            elif known is not None:
                plan.append(FetchedPhoto(position, url, "kept", known.fetched_at, sha256=known.sha256, known=True))
                self.crawler.stats.inc_value(f"{STATS_PREFIX}/known")
            else:
                plan.append(None)
                requests.append(
                    Request(
                        url,
                        callback=NO_CALLBACK,
                        meta={
                            POSITION_META: position,
                            "download_maxsize": self.limits.max_bytes,
                            "download_warnsize": self.limits.max_bytes,
                            "give_up_log_level": "INFO",  # recorded in listing_photos with its reason
                        },
                    )
                )
        item.photos = plan
        return requests

    def media_to_download(self, request: Request, info: FilesPipeline.SpiderInfo, *, item: Any = None) -> None:
        """Always download: whether a URL is already kept was decided from the store, in get_media_requests."""
        return None

    # -- what came back -----------------------------------------------------------------------------------

    async def media_downloaded(  # type: ignore[override]
        self, response: Response, request: Request, info: FilesPipeline.SpiderInfo, *, item: Any = None
    ) -> dict[str, Any]:
        """A good file kept (in a worker thread: decoding and hashing would stall the crawl), or its problem.

        Problems are returned, not raised: Scrapy logs a raised one as an error with a traceback, and a
        refused photo is an expected outcome, recorded in the store with its reason.
        """
        try:
            if response.status != 200:
                self._given_up(response.status in self.retry_codes)
                raise PhotoFailed(f"HTTP {response.status}")
            if not response.body:
                raise PhotoRefused("empty file")
            inspected: InspectedPhoto = await maybe_deferred_to_future(
                deferToThread(keep_photo, self.root, response.body, self.limits)
            )
        except PhotoProblem as problem:
            return {"url": request.url, "problem": problem}
        return {"url": request.url, "photo": inspected, "fetched_at": datetime.now(UTC)}

    def media_failed(  # type: ignore[override]
        self, failure: Failure, request: Request, info: FilesPipeline.SpiderInfo
    ) -> None:
        """Keep why the fetch failed (by URL, as Scrapy caches media results by request) instead of raising."""
        error = failure.value
        name = type(error).__name__
        problem: PhotoProblem
        if isinstance(error, PhotoProblem):
            problem = error
        elif isinstance(error, IgnoreRequest):
            problem = PhotoFailed(f"not fetched: {error or 'ignored'}")
        elif "Cancelled" in name:  # the downloader stops a body over download_maxsize by cancelling it
            problem = PhotoRefused(f"over the limit of {self.limits.max_bytes} bytes: download stopped")
        elif "Timeout" in name:
            problem = PhotoFailed(f"timed out: {error}")
        else:
            problem = PhotoFailed(f"{name}: {error}" if str(error) else name)
        self._given_up(isinstance(error, self.retry_exceptions))
        self.problems[request.url] = problem

    def _given_up(self, retried: bool) -> None:
        """A photo the retry middleware gave up on is recorded with its reason, not held against the run:
        Spidermon's retry monitor counts `retry/max_reached` for pages only."""
        if retried and self.retry_enabled:
            self.crawler.stats.inc_value("retry/max_reached", -1)
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/retries_given_up")

    def item_completed(self, results: list[Any], item: Any, info: FilesPipeline.SpiderInfo) -> Any:
        """Fill the fetched positions (in request order) with their outcomes and count them in the stats."""
        if not isinstance(item, ListingItem) or item.photos is None:
            return item
        outcomes = iter(results)
        filled: list[FetchedPhoto] = []
        now = datetime.now(UTC)
        for planned, url in zip(item.photos, item.images, strict=False):
            if planned is not None:
                filled.append(planned)
                continue
            position = len(filled)
            ok, value = next(outcomes)
            problem = self._problem(ok, value, url)
            if problem is None:
                photo: InspectedPhoto = value["photo"]
                filled.append(
                    FetchedPhoto(
                        position,
                        url,
                        "kept",
                        value["fetched_at"],
                        sha256=photo.sha256,
                        mime=photo.mime,
                        width=photo.width,
                        height=photo.height,
                        size=photo.size,
                        phash=photo.phash,
                        dhash=photo.dhash,
                    )
                )
            else:
                filled.append(FetchedPhoto(position, url, problem.status, now, str(problem)))
                logger.info("photo %d of %s %s: %s", position, item.url, problem.status, problem)
        for outcome in filled:
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/{outcome.status}")
        item.photos = filled
        return item

    def _problem(self, ok: bool, value: Any, url: str) -> PhotoProblem | None:
        """Why a fetched position was not kept, or None if it was."""
        if not ok:  # not expected (media_failed keeps its problems), but never lose the position
            error = getattr(value, "value", value)
            return error if isinstance(error, PhotoProblem) else PhotoFailed(f"{type(error).__name__}: {error}")
        if value is None:
            return self.problems.get(url) or PhotoFailed("not fetched")
        problem = value.get("problem")
        return problem if isinstance(problem, PhotoProblem) else None


def _load_kept(db_url: str, source: str) -> dict[str, KeptPhoto]:
    """The store's kept photo URLs of this source (none if the store cannot be read: then all are fetched)."""
    from sqlalchemy.exc import SQLAlchemyError

    from db.engine import make_engine, session_scope
    from db.photos import kept_photo_urls

    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            return kept_photo_urls(session, source)
    except SQLAlchemyError as exc:
        logger.warning("photos: could not read the kept photos of %s (%s): every photo is fetched", source, exc)
        return {}
    finally:
        engine.dispose()
