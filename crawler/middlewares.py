"""Downloader middlewares: retries that back off (and honour Retry-After), and eBay's application token.

Scrapy's own RetryMiddleware retries at once; a source answering 429/503 asks us to wait, and a polite crawler
does. The eBay token middleware keeps the OAuth token out of the spider: fetched once, renewed before expiry.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Self

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

EBAY_SCOPE = "https://api.ebay.com/oauth/api_scope"


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP date); None if absent or unreadable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware that waits first: Retry-After if the server says, else exponential backoff."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 120.0)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)

    def _delay(self, request: Request, response: Response | None) -> float | None:
        """How long to wait before the next attempt; None when the server asks for more than we accept."""
        if response is not None:
            asked = retry_after_seconds(response.headers.get(b"Retry-After"))
            if asked is not None:
                return asked if asked <= self.retry_after_max else None
        attempt = request.meta.get("retry_times", 0)
        return min(self.backoff_max, self.backoff_base * 2**attempt)

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        delay = self._delay(request, response)
        if delay is None:
            logger.error(
                "Gave up %s: Retry-After %s s is more than RETRY_AFTER_MAX (%s s)",
                request.url,
                (response.headers.get(b"Retry-After") or b"").decode("latin-1"),
                self.retry_after_max,
            )
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        if delay > 0:
            stats = self.crawler.stats
            stats.set_value("korgwatch/retry_wait_seconds", stats.get_value("korgwatch/retry_wait_seconds", 0) + delay)
            await sleep(delay)
        return retry

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        retry = self._retry(request, exception)
        if retry is None:
            return None
        delay = self._delay(request, None) or 0.0
        if delay > 0:
            await sleep(delay)
        return retry


class EbayTokenMiddleware:
    """Adds `Authorization: Bearer <application token>` to requests marked `meta["ebay_auth"]`.

    The token comes from the client-credentials grant at the spider's `token_url`, with EBAY_CLIENT_ID and
    EBAY_CLIENT_SECRET from the environment. It is fetched once, shared by all requests (one fetch at a time)
    and renewed shortly before `expires_in` runs out. Scrapy signs a request before it waits out the download
    delay, so a request can still arrive with an expired token: eBay's 401 then renews it and resends.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.token: str | None = None
        self.expires_at = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _fresh(self) -> bool:
        return self.token is not None and time.monotonic() < self.expires_at

    async def _fetch_token(self) -> str:
        spider = self.crawler.spider
        token_url: str = getattr(spider, "token_url", "")
        client_id = os.environ.get("EBAY_CLIENT_ID", "")
        secret = os.environ.get("EBAY_CLIENT_SECRET", "")
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        request = Request(
            token_url,
            method="POST",
            body=f"grant_type=client_credentials&scope={EBAY_SCOPE}",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            dont_filter=True,
            meta={"ebay_token_request": True},
        )
        response = await self.crawler.engine.download_async(request)
        if response.status != 200:
            raise IgnoreRequest(f"eBay token endpoint answered HTTP {response.status}")
        from crawler.pages.ebay import parse_token

        token = parse_token(response.text)
        lifetime = float(token.expires_in)
        # Renew before expiry: a request signed a moment before expiry may arrive after it.
        margin = min(300.0, lifetime * 0.1)
        self.token = token.access_token
        self.expires_at = time.monotonic() + lifetime - margin
        self.crawler.stats.inc_value("korgwatch/ebay_tokens")
        logger.info("eBay application token obtained (valid %d s)", int(lifetime))
        return self.token

    async def _current_token(self) -> str:
        async with self._lock:
            if not self._fresh():
                return await self._fetch_token()
            assert self.token is not None
            return self.token

    async def process_request(self, request: Request) -> None:
        if not request.meta.get("ebay_auth"):
            return None
        token = await self._current_token()
        request.headers["Authorization"] = f"Bearer {token}"
        return None

    def process_response(self, request: Request, response: Response) -> Request | Response:
        """A 401 means the token expired while the request waited in the download queue: renew, resend."""
        if not request.meta.get("ebay_auth") or response.status != 401:
            return response
        attempts = request.meta.get("ebay_reauth", 0)
        if attempts >= 3:
            return response
        sent = (request.headers.get("Authorization") or b"").decode("latin-1")
        if self.token is not None and sent == f"Bearer {self.token}":
            self.token = None  # the first 401 for this token renews it; later ones just resend
        self.crawler.stats.inc_value("korgwatch/ebay_reauth")
        retry = request.replace(dont_filter=True, priority=request.priority + 10)
        retry.meta["ebay_reauth"] = attempts + 1
        return retry
