"""`korgwatch photos SERIAL` and `korgwatch photos gc` on a real store holding real photo files.

The photos are kept the way the crawl keeps them (contract of issue 15): the file under
`<data dir>/photos/<sha[:2]>/<sha>`, its thumbnail under `photos/thumbs/`, a `photos` row with its hashes indexed,
and a `listing_photos` row per listing and position.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.photos.variants import base_photos, cropped, recode, resized
from fixtures.storage.helpers import Ingest, RecordFactory
from PIL import Image
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from crawler.fingerprints import fingerprint
from db.engine import read_scope, session_scope
from db.models import Listing, ListingPhoto, Photo, PhotoHashBand
from db.photo_index import index_photo
from korgwatch.cli import app
from korgwatch.paths import data_dir

pytest_plugins = ["fixtures.storage.builders"]

HOUR = 3600


def photo_root() -> Path:
    return data_dir() / "photos"


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _write(content: bytes, sha: str, age: float) -> tuple[Path, Path]:
    """The file and a thumbnail at their content addresses, `age` seconds old."""
    path = photo_root() / sha[:2] / sha
    thumb = photo_root() / "thumbs" / sha[:2] / f"{sha}.jpg"
    for target in (path, thumb):
        target.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with Image.open(io.BytesIO(content)) as image:
        small = image.convert("RGB")
        small.thumbnail((320, 320))
        small.save(thumb, "JPEG")
    _age(path, age)
    _age(thumb, age)
    return path, thumb


KeepPhoto = Callable[..., str]


@pytest.fixture
def keep_photo(engine: Engine) -> KeepPhoto:
    """`keep_photo(content, listing_id=None, position=0, created=now, age=2 h) -> sha`: a photo kept as a crawl
    keeps it (file, thumbnail, row, index bands, and the listing's row when a listing is named)."""

    def keep(
        content: bytes,
        listing_id: int | None = None,
        position: int = 0,
        created: datetime | None = None,
        age: float = 2 * HOUR,
    ) -> str:
        sha = hashlib.sha256(content).hexdigest()
        _write(content, sha, age)
        with Image.open(io.BytesIO(content)) as image:
            prints, size = fingerprint(image), image.size
        when = created or datetime.now(UTC)
        with session_scope(engine) as session:
            photo_id = session.scalar(select(Photo.id).where(Photo.sha256 == sha))
            if photo_id is None:
                photo = Photo(
                    sha256=sha, mime="image/jpeg", width=size[0], height=size[1], bytes=len(content),
                    phash=prints.phash, dhash=prints.dhash, created_at=when,
                )  # fmt: skip
                session.add(photo)
                session.flush()
                photo_id = photo.id
                index_photo(session, photo_id, prints.phash)
            if listing_id is not None:
                session.add(
                    ListingPhoto(
                        listing_id=listing_id, position=position, source_url=f"https://img.example/{sha[:8]}.jpg",
                        status="kept", photo_id=photo_id, fetched_at=when,
                    )
                )  # fmt: skip
        return sha

    return keep


@dataclass(frozen=True)
class Store:
    url: str
    listings: dict[str, int]  # name -> listing id
    shas: dict[str, str]  # name -> sha256


@pytest.fixture
def store(engine: Engine, ingest: Ingest, make_record: RecordFactory, keep_photo: KeepPhoto) -> Store:
    """Four listings: an MS-20 141567, its repost with re-encoded photos, a listing of another serial reusing its
    plate photo, and a Polysix; plus photos and files no listing uses."""
    summary = ingest(
        make_record(external_id="first", title="Korg MS-20 s/n 141567", seller="alice"),
        make_record(
            source="ebay", external_id="repost", title="Korg MS-20 serial 141567", seller="bob",
            posted_at="2026-05-01T10:00:00+00:00",
        ),
        make_record(external_id="copy", title="Korg MS-20 s/n 145201", seller="carol"),
        make_record(external_id="poly", title="Korg Polysix 383001", seller="dave"),
    )  # fmt: skip
    assert summary.errors == []
    with read_scope(engine) as session:
        listings = {external: lid for external, lid in session.execute(select(Listing.external_id, Listing.id))}
    photos = base_photos()
    plate = photos["plate_ms20_141567_a"]
    shas = {
        "plate": keep_photo(_jpeg(plate), listings["first"], 0),
        "astronaut": keep_photo(_jpeg(photos["astronaut"]), listings["first"], 1),
        "plate_reencoded": keep_photo(_jpeg(recode(resized(plate, 0.6), "JPEG", quality=60)), listings["repost"], 0),
        "other_plate": keep_photo(_jpeg(photos["plate_ms20_141567_b"]), listings["repost"], 1),
        "plate_cropped": keep_photo(_jpeg(cropped(plate, 0.02)), listings["copy"], 0),
        "coffee": keep_photo(_jpeg(photos["coffee"]), listings["poly"], 0),
        # No listing uses these: an old row with its files, and one a crawl stored a minute ago.
        "orphan": keep_photo(_jpeg(photos["moon"]), created=datetime.now(UTC) - timedelta(days=2)),
        "orphan_young": keep_photo(_jpeg(photos["rocket"]), created=datetime.now(UTC), age=60),
    }
    return Store(engine.url.render_as_string(hide_password=False), listings, shas)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_photos_of_a_serial_with_their_matches(store: Store) -> None:
    code, out, err = _run("photos", "141567", "--db", store.url, "-f", "json")
    assert code == 0, err
    rows = json.loads(out)
    first, repost = store.listings["first"], store.listings["repost"]
    assert [(r["listing_id"], r["position"], r["sha"]) for r in rows] == [
        (first, 0, store.shas["plate"][:12]),
        (first, 1, store.shas["astronaut"][:12]),
        (repost, 0, store.shas["plate_reencoded"][:12]),
        (repost, 1, store.shas["other_plate"][:12]),
    ]
    plate, astronaut, reencoded, other_plate = rows
    assert plate["model"] == "MS-20" and plate["source_url"].startswith("https://img.example/")
    assert plate["size"] == f"{plate['width']}x{plate['height']}, {plate['bytes']} B"
    # The re-encoded repost and the listing of another serial reusing the plate photo both match it.
    copy = store.listings["copy"]
    assert plate["matches"] == [f"listing {repost} #0 (MS-20 141567) d=0", f"listing {copy} #0 (MS-20 145201) d=4"]
    assert reencoded["matches"] == [f"listing {first} #0 (MS-20 141567) d=0", f"listing {copy} #0 (MS-20 145201) d=4"]
    assert astronaut["matches"] == [] and other_plate["matches"] == []  # a different plate is not the same photo


def test_photos_table_names_the_store_and_model_filter(store: Store) -> None:
    code, out, _ = _run("photos", "141567", "--model", "ms20", "--db", store.url)
    assert code == 0 and "photos of 141567" in out and store.shas["plate"][:12] in out
    code, out, _ = _run("photos", "141567", "--model", "polysix", "--db", store.url)
    assert code == 0 and "nothing found" in out
    code, _, err = _run("photos", "141567", "--model", "nonsense", "--db", store.url)
    assert code == 2 and "unknown model 'nonsense'" in err


def test_photos_never_creates_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    for args in (("photos", "141567"), ("photos", "gc")):
        code, _, err = _run(*args, "--db", str(missing))
        assert code == 2 and "no korgwatch store" in err
    assert not missing.exists()


def _files() -> set[str]:
    return {str(p.relative_to(photo_root())) for p in photo_root().rglob("*") if p.is_file()}


def test_gc_frees_only_what_no_listing_uses(store: Store, engine: Engine) -> None:
    stray = photo_root() / "README.txt"
    stray.write_text("not ours")
    odd = photo_root() / "ab" / "not-a-hash"
    odd.parent.mkdir(exist_ok=True)
    odd.write_text("nor this")
    old_loose = hashlib.sha256(b"loose").hexdigest()
    _write(_jpeg(base_photos()["camera"]), old_loose, 3 * HOUR)  # a file whose row never got committed
    young_loose = hashlib.sha256(b"young").hexdigest()
    _write(_jpeg(base_photos()["chelsea"]), young_loose, 60)  # a crawl writing it now, rows not yet committed
    before = _files()

    code, out, err = _run("photos", "gc", "--dry-run", "--db", store.url)
    assert code == 0, err
    assert out.startswith("would free 2 photo file(s) and 2 thumbnail(s)") and "would delete 1 unused" in out
    assert _files() == before

    code, out, err = _run("photos", "gc", "--db", store.url)
    assert code == 0, err
    assert out.startswith("freed 2 photo file(s) and 2 thumbnail(s)")
    assert "deleted 1 unused photos row(s)" in out and "left 2 unused file(s) younger" in out
    gone = {f"{sha[:2]}/{sha}" for sha in (store.shas["orphan"], old_loose)}
    gone |= {f"thumbs/{sha[:2]}/{sha}.jpg" for sha in (store.shas["orphan"], old_loose)}
    assert _files() == before - gone
    with read_scope(engine) as session:
        shas = set(session.scalars(select(Photo.sha256)))
        assert shas == set(store.shas.values()) - {store.shas["orphan"]}
        assert session.scalar(select(func.count()).select_from(PhotoHashBand)) == 4 * len(shas)

    # A listing removed: its photo becomes unused, but is young; a zero grace collects it and the young orphan.
    with session_scope(engine) as session:
        session.delete(session.get(Listing, store.listings["poly"]))
    code, out, _ = _run("photos", "gc", "--db", store.url)
    assert code == 0 and out.startswith("freed 0 photo file(s)") and "deleted 0 unused" in out
    code, out, _ = _run("photos", "gc", "--grace-minutes", "0", "--db", store.url)
    assert code == 0 and out.startswith("freed 3 photo file(s) and 3 thumbnail(s)"), out
    assert "deleted 2 unused photos row(s)" in out
    assert stray.exists() and odd.exists()
    for name in ("plate", "astronaut", "plate_reencoded", "other_plate", "plate_cropped"):
        sha = store.shas[name]
        assert (photo_root() / sha[:2] / sha).exists() and (photo_root() / "thumbs" / sha[:2] / f"{sha}.jpg").exists()
