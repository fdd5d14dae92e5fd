"""The crawl keeps listing photos: fetched through Scrapy's media pipeline from a loopback site, checked, stored
content-addressed with an EXIF-free thumbnail and fingerprints, recorded per listing position.

The site serves good files (JPEG with EXIF, PNG, WebP, an animated GIF), a 404, a file over the byte limit, a
page with an image extension, a decompression bomb (a PNG header claiming 12000x12000 pixels), a photo slower
than the download timeout, and one listing with more photos than the per-listing limit. Requests are counted
at the server, so the re-crawl is seen to fetch nothing already kept.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from crawler.demo.site import FixtureSite, RunningSite, serve
from crawler.photo_store import photo_path, thumb_path
from db.engine import make_engine, session_scope
from db.models import Listing, ListingPhoto, Photo, PhotoHashBand

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 50_000
PER_LISTING = 4


def drawing(size: tuple[int, int], seed: int) -> Image.Image:
    """A picture with structure (perceptual hashes of a flat image are meaningless)."""
    image = Image.new("RGB", size, (30 + seed * 40, 60, 90))
    draw = ImageDraw.Draw(image)
    for step in range(12):
        x = (step * 53 * (seed + 1)) % size[0]
        draw.ellipse((x, step * 20, x + 60, step * 20 + 40), fill=(200, 40 * step % 255, 30 * seed % 255))
    return image


def encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    out = BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SellerCam"  # Make
    exif[0x0131] = "secret-software 1.0"  # Software
    return encoded(drawing((640, 480), 1), "JPEG", exif=exif.tobytes(), quality=85)


def animated_gif() -> bytes:
    first, second = drawing((200, 150), 3).quantize(32), drawing((200, 150), 4).quantize(32)
    out = BytesIO()
    first.save(out, "GIF", save_all=True, append_images=[second], duration=100)
    return out.getvalue()


def noise_jpeg() -> bytes:
    """A real JPEG over MAX_BYTES: random noise does not compress."""
    return encoded(Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)), "JPEG", quality=95)


def png_bomb(width: int = 12000, height: int = 12000) -> bytes:
    """A tiny PNG whose header claims width x height pixels: Pillow's decompression-bomb check must stop it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


PHOTOS = {
    "good-1.jpg": jpeg_with_exif(),
    "good-2.png": encoded(drawing((300, 200), 2), "PNG"),
    "good-3.webp": encoded(drawing((320, 240), 5), "WEBP"),
    "anim.gif": animated_gif(),
    "huge.jpg": noise_jpeg(),
    "fake.jpg": b"<!doctype html><title>Not found</title><p>This is a page, not a photo.</p>",
    "bomb.png": png_bomb(),
    "slow.jpg": encoded(drawing((120, 90), 6), "JPEG"),
}


def listing(number: int, title: str, images: list[str], seller: str = "Kenji's Studio Gear") -> dict[str, object]:
    return {
        "id": str(77700000 + number),
        "title": title,
        "body": f"{title}. Photos of the actual unit.",
        "seller": seller,
        "price": "1500.00",
        "posted_at": f"2024-03-{10 + number:02d}T12:00:00Z",
        "images": images,
    }


def first_listings(slow_root: str) -> list[dict[str, object]]:
    """The slow photo is on a second server (a photo host of its own, as marketplaces have)."""
    return [
        listing(
            1,
            "Korg MS-20 s/n 141567",
            ["photos/good-1.jpg", "photos/good-2.png", "photos/missing.jpg", "photos/huge.jpg"],
        ),
        listing(
            2,
            "Korg Polysix s/n 386733",
            [
                "photos/fake.jpg",
                "photos/bomb.png",
                f"{slow_root}/photos/slow.jpg",
                "photos/good-3.webp",
                "photos/anim.gif",
            ],
            seller="Vintage Keys Chicago",
        ),
    ]


def second_listings(slow_root: str) -> list[dict[str, object]]:
    """The re-crawl adds a listing showing an already kept photo (same URL: recorded, not fetched) and a new one."""
    third = listing(3, "Korg Mono/Poly s/n 375329", ["photos/good-1.jpg", "photos/anim.gif"], seller="Synthladen")
    return [*first_listings(slow_root), third]


def write_config(path: Path, site: RunningSite) -> Path:
    lines = [
        "contact_url: https://example.org/korgwatch-tests",
        "photos:",
        f"  per_listing: {PER_LISTING}",
        "sources:",
        "  reverb:",
        f"    base_url: {json.dumps(site.base_url('reverb'))}",
        '    queries: ["korg"]',
        "    delay: 0",
        "    timeout: 60",
        "    page_size: 50",
        "    photos:",
        f"      max_bytes: {MAX_BYTES}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def crawl(tmp: Path, config: Path, db_url: str, name: str, *extra: str) -> dict[str, object]:
    out = tmp / f"{name}.json"
    env = {**os.environ, "KORGWATCH_DATA_DIR": str(tmp / "data")}
    command = [
        sys.executable, "-m", "crawler.run", "reverb", "--config", str(config), "--db", db_url, "--json", str(out),
        "--no-progress", "--set", "DOWNLOAD_TIMEOUT=1", "--set", "RETRY_TIMES=0", "--set", "DOWNLOAD_DELAY=0",
        "--set", "AUTOTHROTTLE_ENABLED=false", "--set", "LOG_LEVEL=INFO", *extra,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    (tmp / f"{name}.stderr.txt").write_text(done.stderr, encoding="utf-8")
    assert out.exists(), done.stderr[-3000:]
    runs = json.loads(out.read_text(encoding="utf-8"))
    return dict(runs[0])


@dataclass
class Crawled:
    site: RunningSite
    tmp: Path
    db_url: str
    first: dict[str, object]
    second: dict[str, object]
    first_requests: dict[str, int]
    second_requests: dict[str, int]


def photo_requests(site: RunningSite) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in site.requests:
        if entry.path.startswith("/photos/"):
            name = entry.path.removeprefix("/photos/")
            counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawled]:
    tmp = tmp_path_factory.mktemp("photos")
    db_url = f"sqlite:///{tmp / 'korgwatch.sqlite'}"
    with serve(FixtureSite({}, photos=PHOTOS)) as slow, serve(FixtureSite({}, photos=PHOTOS)) as site:
        slow.inject("/photos/slow.jpg", delay=3.0)
        site.site = FixtureSite({"reverb": first_listings(slow.root)}, photos=PHOTOS)
        site.site.set_photo_root(site.root)
        config = write_config(tmp / "sources.yaml", site)
        first = crawl(tmp, config, db_url, "first")
        first_requests = photo_requests(site) | photo_requests(slow)
        site.clear_log()
        second_site = FixtureSite({"reverb": second_listings(slow.root)}, photos=PHOTOS)
        second_site.set_photo_root(site.root)
        site.site = second_site
        second = crawl(tmp, config, db_url, "second", "--full")
        yield Crawled(site, tmp, db_url, first, second, first_requests, photo_requests(site))


def rows(db_url: str, external_id: str) -> list[tuple[int, str, str, str | None, str | None]]:
    """(position, file name, status, reason, sha256) of a listing's photos."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            found = session.execute(
                select(
                    ListingPhoto.position,
                    ListingPhoto.source_url,
                    ListingPhoto.status,
                    ListingPhoto.reason,
                    Photo.sha256,
                )
                .join(Listing, ListingPhoto.listing_id == Listing.id)
                .outerjoin(Photo, ListingPhoto.photo_id == Photo.id)
                .where(Listing.external_id == external_id)
                .order_by(ListingPhoto.position)
            ).all()
    finally:
        engine.dispose()
    return [(p, url.rsplit("/", 1)[-1], status, reason, sha) for p, url, status, reason, sha in found]


def test_the_crawl_keeps_exactly_the_good_photos_and_records_why_the_others_are_not(crawled: Crawled) -> None:
    assert crawled.first["outcome"] == "ok", crawled.first
    first = rows(crawled.db_url, "77700001")
    second = rows(crawled.db_url, "77700002")
    statuses = {name: (status, reason or "") for _, name, status, reason, _ in first + second}
    assert {name for name, (status, _) in statuses.items() if status == "kept"} == {
        "good-1.jpg",
        "good-2.png",
        "good-3.webp",
    }
    assert statuses["missing.jpg"][0] == "failed" and "404" in statuses["missing.jpg"][1]
    assert statuses["huge.jpg"][0] == "refused" and str(MAX_BYTES) in statuses["huge.jpg"][1]
    assert statuses["fake.jpg"] == ("refused", "not an image Pillow can read")
    assert statuses["bomb.png"][0] == "refused" and "decompression bomb" in statuses["bomb.png"][1]
    assert statuses["slow.jpg"][0] == "failed" and "timed out" in statuses["slow.jpg"][1].lower()
    # the fifth photo of a listing is over the per-listing limit: recorded, never requested
    assert statuses["anim.gif"][0] == "refused" and f"limit of {PER_LISTING} photos" in statuses["anim.gif"][1]
    assert "anim.gif" not in crawled.first_requests
    assert [p for p, *_ in first] == [0, 1, 2, 3] and [p for p, *_ in second] == [0, 1, 2, 3, 4]


def test_kept_photos_are_stored_once_with_thumbnail_fingerprints_and_bands(crawled: Crawled) -> None:
    root = crawled.tmp / "data" / "photos"
    engine = make_engine(crawled.db_url)
    try:
        with session_scope(engine) as session:
            photos = session.execute(select(Photo)).scalars().all()
            bands = session.scalar(select(func.count()).select_from(PhotoHashBand))
            kept = [(p.sha256, p.mime, p.width, p.height, p.bytes) for p in photos]
    finally:
        engine.dispose()
    import hashlib

    expected = {
        hashlib.sha256(PHOTOS[name]).hexdigest(): name
        for name in ("good-1.jpg", "good-2.png", "good-3.webp", "anim.gif")
    }
    assert {sha for sha, *_ in kept} <= set(expected)
    for sha, mime, width, height, size in kept:
        original = photo_path(root, sha)
        assert original.read_bytes() == PHOTOS[expected[sha]] and size == len(PHOTOS[expected[sha]])
        with Image.open(BytesIO(PHOTOS[expected[sha]])) as image:
            assert (width, height) == image.size and mime == f"image/{(image.format or '').lower()}"
        with Image.open(thumb_path(root, sha)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= 320
            assert not thumb.getexif() and "exif" not in thumb.info
    assert bands == 4 * len(kept)
    assert not list(root.rglob(".tmp-*"))


def test_a_recrawl_fetches_nothing_already_kept(crawled: Crawled) -> None:
    assert crawled.second["outcome"] == "ok", crawled.second
    for name in ("good-1.jpg", "good-2.png", "good-3.webp"):
        assert crawled.first_requests.get(name) == 1
        assert name not in crawled.second_requests, crawled.second_requests
    # what was not kept is tried again; the new listing's new photo (first four of its photos) is fetched
    assert crawled.second_requests.get("missing.jpg") == 1 and crawled.second_requests.get("anim.gif") == 1
    third = rows(crawled.db_url, "77700003")
    assert [(name, status) for _, name, status, _, _ in third] == [("good-1.jpg", "kept"), ("anim.gif", "kept")]
    first = rows(crawled.db_url, "77700001")
    assert third[0][4] == first[0][4]  # the same file, kept once
    assert len(list((crawled.tmp / "data" / "photos").glob("??/*"))) == 4


def test_no_photos_fetches_none_and_leaves_the_records_alone(crawled: Crawled, tmp_path: Path) -> None:
    before = rows(crawled.db_url, "77700001")
    crawled.site.clear_log()
    run = crawl(tmp_path, crawled.tmp / "sources.yaml", crawled.db_url, "nophotos", "--full", "--no-photos")
    assert run["outcome"] == "ok"
    assert photo_requests(crawled.site) == {}
    assert rows(crawled.db_url, "77700001") == before
