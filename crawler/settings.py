"""Scrapy settings for korgwatch: polite by default, per-source delays and limits from `config/sources.yaml`.

The module-level names are the project defaults (what `scrapy.cfg` points at); `crawl_settings()` layers one
source's config and one run's options on top, so each source gets its own Crawler with its own politeness.
Custom settings (read by our middlewares and pipeline) are prefixed `KORGWATCH_` or documented beside them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from scrapy.settings import Settings

from crawler.sources import CrawlConfig, PhotoLimits, SourceConfig

try:
    KORGWATCH_VERSION = version("korgwatch")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    KORGWATCH_VERSION = "0"

# Alphabetical, like Scrapy's own default_settings.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
BOT_NAME = "korgwatch"
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 1
COOKIES_ENABLED = False
DOWNLOAD_DELAY = 2.0
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024  # a listing page or API page is far smaller; refuse anything bigger
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    "crawler.middlewares.EbayTokenMiddleware": 600,
}
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "spidermon.contrib.scrapy.extensions.Spidermon": 500,
}
FEED_EXPORT_ENCODING = "utf-8"
# Photos first: the ingest pipeline stores what the photos pipeline did with each one beside its listing.
ITEM_PIPELINES = {"crawler.photos.PhotosPipeline": 200, "crawler.pipelines.IngestPipeline": 300}
# Items per store transaction: large enough to amortise the commit, small enough to lose little on a crash.
KORGWATCH_BATCH_SIZE = 200
# ... and a listing waits at most this many seconds for its batch (a worker idles with a part batch).
KORGWATCH_BATCH_MAX_WAIT = 2.0
# Evidence (raw responses, gzip, content-addressed) is kept here; None means `<data dir>/evidence`.
KORGWATCH_EVIDENCE_DIR: str | None = None
# Fetch and keep listing photos (crawler/photos.py); `korgwatch crawl --no-photos` sets it False.
KORGWATCH_PHOTOS = True
# Kept photos live here; None means `<data dir>/photos` (crawler/photo_store.py).
KORGWATCH_PHOTO_DIR: str | None = None
# The source's photo limits (config/sources.yaml `photos:`), set per crawler by crawl_settings().
KORGWATCH_PHOTO_LIMITS: dict[str, Any] | None = None
# Page incrementally (stop at the first fully known page of a date-sorted source) unless True.
KORGWATCH_FULL = False
LOG_LEVEL = "INFO"
NEWSPIDER_MODULE = "crawler.spiders"
# Retry-After is honoured up to this many seconds; longer waits give the request up (and the run degrades).
RETRY_AFTER_MAX = 120.0
# Scrapy 2.19's remote-control HTTP endpoint: a crawl of untrusted pages needs no open port.
REMOTE_CONTROL_ENABLED = False
# Without Retry-After, wait RETRY_BACKOFF_BASE * 2**(attempt-1) seconds, at most RETRY_BACKOFF_MAX.
RETRY_BACKOFF_BASE = 1.0
RETRY_BACKOFF_MAX = 60.0
RETRY_ENABLED = True
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
RETRY_TIMES = 3
ROBOTSTXT_OBEY = True
SPIDER_MODULES = ["crawler.spiders"]
SPIDERMON_ADD_FIELD_COVERAGE = True
SPIDERMON_ENABLED = True
SPIDERMON_FIELD_COVERAGE_RULES = {
    "ListingItem/title": 1.0,
    "ListingItem/url": 1.0,
    "ListingItem/posted_at": 0.8,
}
SPIDERMON_FIELD_COVERAGE_SKIP_IF_NO_ITEM = True
SPIDERMON_MAX_RETRIES = 0  # requests that gave up retrying (each is also a recorded error)
SPIDERMON_MIN_ITEMS = 1
SPIDERMON_SPIDER_CLOSE_MONITORS = ("crawler.monitors.SourceMonitorSuite",)
TELNETCONSOLE_ENABLED = False
USER_AGENT = f"korgwatch/{KORGWATCH_VERSION} (+https://github.com/korgwatch/korgwatch)"


def limits_setting(limits: PhotoLimits) -> dict[str, Any]:
    """A source's photo limits as a plain dict: settings are copied, and a worker's are serialised."""
    return {
        "enabled": limits.enabled,
        "per_listing": limits.per_listing,
        "max_bytes": limits.max_bytes,
        "types": list(limits.types),
        "max_pixels": limits.max_pixels,
    }


def user_agent(contact_url: str) -> str:
    """Who we are and where to complain: sites can then contact us instead of blocking us."""
    return f"korgwatch/{KORGWATCH_VERSION} (+{contact_url})"


def crawl_settings(
    config: CrawlConfig,
    source: SourceConfig,
    *,
    db_url: str,
    evidence_dir: Path | None = None,
    photo_dir: Path | None = None,
    full: bool = False,
    jobdir: Path | None = None,
    polite: bool = True,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """One source's crawler settings: project defaults, then the source's config, then the run's options.

    `polite=False` (benchmarks only) turns off delays, AutoThrottle and robots.txt.
    """
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    values: dict[str, Any] = {
        "USER_AGENT": user_agent(config.contact_url),
        "DOWNLOAD_DELAY": source.delay,
        "AUTOTHROTTLE_START_DELAY": max(source.delay, 0.1),
        "CLOSESPIDER_TIMEOUT": source.timeout,
        "SPIDERMON_MIN_ITEMS": source.min_items,
        "KORGWATCH_DB_URL": db_url,
        "KORGWATCH_FULL": full,
        "KORGWATCH_PHOTO_LIMITS": limits_setting(source.photos),
    }
    if photo_dir is not None:
        values["KORGWATCH_PHOTO_DIR"] = str(photo_dir)
    if evidence_dir is not None:
        values["KORGWATCH_EVIDENCE_DIR"] = str(evidence_dir)
    if jobdir is not None:
        values["JOBDIR"] = str(jobdir / source.name)
    if not polite:
        values |= {
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "ROBOTSTXT_OBEY": False,
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        }
    values |= overrides or {}
    settings.setdict(values, priority="cmdline")
    return settings
