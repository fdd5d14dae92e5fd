"""The crawl's pure parts: the sources file, URL rebasing, Retry-After, settings and evidence storage."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from crawler.evidence import KnownListing, is_unchanged, load_evidence, store_evidence
from crawler.middlewares import retry_after_seconds
from crawler.pages.records import ListingRecord
from crawler.settings import crawl_settings, user_agent
from crawler.sources import KNOWN_SOURCES, SourcesError, load_sources
from crawler.spiders.base import rebase

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_shipped_sources_file_loads() -> None:
    config = load_sources(REPO_ROOT / "config" / "sources.yaml")
    assert set(config.sources) == set(KNOWN_SOURCES)
    assert config.source("reverb").base_url == "https://api.reverb.com"
    assert config.source("ebay").base_url == "https://api.ebay.com"
    assert config.source("matrixsynth").feeds == ("/feeds/posts/default",)
    assert all(source.delay >= 1 for source in config.sources.values())


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("contact_url: nope\nsources: {}\n", ":1: contact_url must be an http(s) URL"),
        (
            "contact_url: https://x.org\nsources:\n  reverb:\n    base_url: https://api.reverb.com\n"
            "    queries: [a]\n    delay: fast\n",
            ":6: source 'reverb': delay must be int or float, not str 'fast'",
        ),
        (
            "contact_url: https://x.org\nsources:\n  reverb:\n    base_url: https://api.reverb.com\n"
            "    queries: [a]\n    pagesize: 3\n",
            ":6: source 'reverb': unknown setting 'pagesize'",
        ),
        (
            "contact_url: https://x.org\nsources:\n  craigslist:\n    base_url: https://x.org\n",
            ":3: source 'craigslist'",
        ),
        (
            "contact_url: https://x.org\nsources:\n  ebay:\n    queries: [a]\n",
            ":3: source 'ebay': base_url is required",
        ),
        ("contact_url: [\n", ":2: not valid YAML"),
    ],
)
def test_sources_errors_name_file_and_line(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SourcesError) as caught:
        load_sources(path)
    assert any(problem.startswith(str(path)) and expected in problem for problem in caught.value.problems), (
        caught.value.problems
    )


@pytest.mark.parametrize(
    ("base", "url", "params", "expected"),
    [
        (
            "http://127.0.0.1:9/matrixsynth",
            "https://www.blogger.com/feeds/1700/posts/default?start-index=4&max-results=3",
            None,
            "http://127.0.0.1:9/matrixsynth/feeds/1700/posts/default?start-index=4&max-results=3",
        ),
        (
            "https://api.reverb.com/",
            "/api/listings",
            {"query": "korg ms-20", "page": "2"},
            "https://api.reverb.com/api/listings?query=korg+ms-20&page=2",
        ),
        (
            "http://h/ebay",
            "/buy/browse/v1/item/v1%7C1%7C0",
            None,
            "http://h/ebay/buy/browse/v1/item/v1%7C1%7C0",
        ),
    ],
)
def test_rebase_keeps_path_and_parameters(base: str, url: str, params: dict[str, str] | None, expected: str) -> None:
    assert rebase(base, url, params) == expected


def test_retry_after_seconds_and_dates() -> None:
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds(b"soon") is None
    now = 1_700_000_000.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == pytest.approx(20.0)


def test_settings_polite_by_default() -> None:
    config = load_sources(REPO_ROOT / "config" / "sources.yaml")
    settings = crawl_settings(config, config.source("yahoo_auctions"), db_url="sqlite://")
    assert settings.getbool("ROBOTSTXT_OBEY") and settings.getbool("AUTOTHROTTLE_ENABLED")
    assert settings.getfloat("DOWNLOAD_DELAY") == config.source("yahoo_auctions").delay
    assert settings["USER_AGENT"] == user_agent(config.contact_url)
    assert settings["USER_AGENT"].startswith("korgwatch/") and config.contact_url in settings["USER_AGENT"]
    assert settings.getint("DOWNLOAD_MAXSIZE") <= 16 * 1024 * 1024
    assert 429 in settings.getlist("RETRY_HTTP_CODES")
    fast = crawl_settings(config, config.source("reverb"), db_url="sqlite://", polite=False)
    assert not fast.getbool("ROBOTSTXT_OBEY") and fast.getfloat("DOWNLOAD_DELAY") == 0


def test_evidence_is_gzip_and_content_addressed(tmp_path: Path) -> None:
    digest = store_evidence(tmp_path, b"<feed>one</feed>")
    assert store_evidence(tmp_path, b"<feed>one</feed>") == digest
    path = tmp_path / digest[:2] / f"{digest}.gz"
    assert gzip.decompress(path.read_bytes()) == b"<feed>one</feed>"
    assert load_evidence(tmp_path, digest) == b"<feed>one</feed>"
    assert len(list(tmp_path.rglob("*.gz"))) == 1


def test_unchanged_compares_title_price_and_body() -> None:
    record = ListingRecord(source="ebay", url="u", external_id="1", title="Korg MS-20", body="SN 1", price="10.00")
    known = KnownListing("Korg MS-20", "SN 1", Decimal("10"))
    assert is_unchanged(record, known)
    assert not is_unchanged(record, None)
    assert not is_unchanged(record, KnownListing("Korg MS-20", "SN 2", Decimal("10")))
    assert is_unchanged(record, KnownListing("Korg MS-20", "SN 2", Decimal("10")), compare_body=False)
    assert not is_unchanged(record, KnownListing("Korg MS-20", "SN 1", Decimal("11")), compare_body=False)
