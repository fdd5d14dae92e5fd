"""Listing photos into the store with the listing (db/photos.py through ingest_records), on both backends."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fixtures.storage.helpers import NOW, Ingest, RecordFactory
from sqlalchemy import Engine, func, select

from crawler.fingerprints import bands
from crawler.photo_store import photo_path, store_photo, thumb_path
from db.engine import session_scope
from db.models import Listing, ListingPhoto, Photo, PhotoHashBand
from db.photos import FetchedPhoto, kept_photo_urls

pytest_plugins = ["fixtures.storage.builders"]

SHA = hashlib.sha256(b"plate photo").hexdigest()
PHASH, DHASH = -0x3A5C_0F0F_1234_5678, 0x0123_4567_89AB_CDEF


def kept(position: int, url: str, *, known: bool = False) -> FetchedPhoto:
    if known:
        return FetchedPhoto(position, url, "kept", NOW, sha256=SHA, known=True)
    return FetchedPhoto(
        position,
        url,
        "kept",
        NOW,
        sha256=SHA,
        mime="image/jpeg",
        width=640,
        height=480,
        size=11,
        phash=PHASH,
        dhash=DHASH,
    )


def photo_rows(engine: Engine, external_id: str) -> list[tuple[int, str, str, str | None, int | None]]:
    with session_scope(engine) as session:
        return [
            tuple(row)  # type: ignore[misc]
            for row in session.execute(
                select(
                    ListingPhoto.position,
                    ListingPhoto.source_url,
                    ListingPhoto.status,
                    ListingPhoto.reason,
                    ListingPhoto.photo_id,
                )
                .join(Listing)
                .where(Listing.external_id == external_id)
                .order_by(ListingPhoto.position)
            )
        ]


def test_a_file_shown_by_two_listings_is_one_photo_with_its_bands(
    engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    first = make_record(external_id="a", images=["https://i/1.jpg", "https://i/404.jpg"])
    second = make_record(external_id="b", images=["https://i/copy.jpg"])
    photos = {
        ("reverb", "a"): [kept(0, "https://i/1.jpg"), FetchedPhoto(1, "https://i/404.jpg", "failed", NOW, "HTTP 404")],
        ("reverb", "b"): [kept(0, "https://i/copy.jpg")],
    }
    summary = ingest(first, second, photos=photos)
    assert summary.listings_new == 2 and not summary.errors
    with session_scope(engine) as session:
        (photo,) = session.scalars(select(Photo)).all()
        stored = sorted(session.execute(select(PhotoHashBand.band, PhotoHashBand.value)).all())
        assert (photo.sha256, photo.phash, photo.dhash, photo.width, photo.bytes) == (SHA, PHASH, DHASH, 640, 11)
        assert stored == sorted(bands(PHASH))
        assert kept_photo_urls(session, "reverb").keys() == {"https://i/1.jpg", "https://i/copy.jpg"}
    assert photo_rows(engine, "a") == [
        (0, "https://i/1.jpg", "kept", None, photo.id),
        (1, "https://i/404.jpg", "failed", "HTTP 404", None),
    ]
    assert photo_rows(engine, "b") == [(0, "https://i/copy.jpg", "kept", None, photo.id)]


def test_a_later_crawl_replaces_a_listings_rows_and_one_without_photos_leaves_them(
    engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    record = make_record(external_id="a", images=["https://i/1.jpg", "https://i/2.jpg"])
    ingest(
        record,
        photos={
            ("reverb", "a"): [
                kept(0, "https://i/1.jpg"),
                FetchedPhoto(1, "https://i/2.jpg", "failed", NOW, "timed out"),
            ]
        },
    )
    again = [
        kept(0, "https://i/1.jpg", known=True),
        FetchedPhoto(1, "https://i/2.jpg", "refused", NOW, "type tiff not accepted"),
    ]
    ingest(record, photos={("reverb", "a"): again})
    rows = photo_rows(engine, "a")
    assert [(p, status, reason) for p, _, status, reason, _ in rows] == [
        (0, "kept", None),
        (1, "refused", "type tiff not accepted"),
    ]
    ingest(record)  # korgwatch ingest, or a crawl with --no-photos
    assert photo_rows(engine, "a") == rows
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Photo)) == 1


def test_a_known_photo_whose_record_is_gone_is_recorded_failed_to_be_fetched_again(
    engine: Engine, ingest: Ingest, make_record: RecordFactory
) -> None:
    ingest(make_record(external_id="a"), photos={("reverb", "a"): [kept(0, "https://i/1.jpg", known=True)]})
    ((_, _, status, reason, photo_id),) = photo_rows(engine, "a")
    assert (status, photo_id) == ("failed", None) and reason and "fetched again" in reason


def test_files_are_kept_once_under_their_hash_and_paths_take_only_a_hash(tmp_path: Path) -> None:
    assert store_photo(tmp_path, SHA, b"plate photo", b"thumb") is True
    assert store_photo(tmp_path, SHA, b"plate photo", b"thumb") is False
    assert photo_path(tmp_path, SHA).read_bytes() == b"plate photo"
    assert thumb_path(tmp_path, SHA) == tmp_path / "thumbs" / SHA[:2] / f"{SHA}.jpg"
    for bad in ("../../etc/passwd", SHA.upper(), SHA[:-1], f"{SHA[:-2]}/x"):
        with pytest.raises(ValueError, match="not a sha256"):
            photo_path(tmp_path, bad)
