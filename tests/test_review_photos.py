"""Kept photos on the review page (Starlette's TestClient, a real SQLite file, real files in a temp store): the
photo route serves only kept files named by their sha256, with their type, nosniff and cache headers, and
refuses anything else; the listing page lays every appearance's photos side by side with the matches linked,
and falls back to marketplace links when nothing was kept; the CSP allows only this origin's images unless
`remote_photos` is on."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.storage.helpers import NOW
from fixtures.storage.photos import jpeg, keeping_analyser, picture, reuploaded
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from db.models import Appearance
from pipeline.rules import Rules
from review.app import CSP, ReviewConfig, create_app


def record(n: int, title: str, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": "reverb",
        "url": f"https://reverb.com/item/{n}",
        "external_id": str(n),
        "title": title,
        "body": "",
        "seller": f"seller-{n}",
        "posted_at": "2026-03-01T10:00:00+00:00",
        "images": [f"https://img.example/{n}/{i}.jpg" for i in range(2)],
    }
    data.update(over)
    return data


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    upgrade_engine(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "photos"


def ingest(engine: Engine, rules: Rules, root: Path, rec: dict[str, Any], photos: list[bytes]) -> None:
    with session_scope(engine) as session:
        ingest_records(session, [rec], rules, now=NOW, analyser=keeping_analyser(session, root, {rec["title"]: photos}))


def client_for(engine: Engine, rules: Rules, root: Path, **config: Any) -> TestClient:
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(ReviewConfig(url, rules, reviewer="tester", photo_root=root, **config), engine=engine)
    return TestClient(app)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_photo_route_serves_kept_files_by_hash_only(engine: Engine, rules: Rules, root: Path, tmp_path: Path) -> None:
    data = jpeg(picture(1))
    ingest(engine, rules, root, record(1, "Korg MS-20 140144"), [data])
    (tmp_path / "secret.txt").write_text("not a photo")
    client = client_for(engine, rules, root)

    full = client.get(f"/photos/{sha(data)}")
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "image/jpeg"
    assert full.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in full.headers["cache-control"] and "max-age=31536000" in full.headers["cache-control"]
    thumb = client.get(f"/photos/{sha(data)}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8" and thumb.content != data

    unknown = "0" * 64
    (root / unknown[:2]).mkdir(parents=True, exist_ok=True)
    (root / unknown[:2] / unknown).write_bytes(b"a file no listing kept")
    refused = [
        f"/photos/{unknown}",  # a file in the store that no photos row names
        f"/photos/{sha(data).upper()}",
        f"/photos/{sha(data)[:63]}",
        "/photos/..%2Fsecret.txt",
        "/photos/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/photos/secret.txt",
        f"/photos/{sha(data)}.jpg",
        f"/photos/{sha(data)}/../../secret.txt",
    ]
    for path in refused:
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"a file no listing kept" not in response.content
        assert not response.headers["content-type"].startswith("image/"), path


def test_a_kept_row_whose_file_is_gone_is_a_404_not_a_crash(engine: Engine, rules: Rules, root: Path) -> None:
    data = jpeg(picture(2))
    ingest(engine, rules, root, record(1, "Korg MS-20 140144"), [data])
    (root / sha(data)[:2] / sha(data)).unlink()
    response = client_for(engine, rules, root).get(f"/photos/{sha(data)}")
    assert response.status_code == 404 and "not in the store" in response.text


def test_listing_page_lays_the_serials_photos_side_by_side(engine: Engine, rules: Rules, root: Path) -> None:
    plate, front = picture(3), picture(4)
    first = [jpeg(front), jpeg(plate)]
    ingest(engine, rules, root, record(1, "Korg MS-20 s/n 140144", seller="alice"), first)
    again = reuploaded(plate)
    ingest(
        engine,
        rules,
        root,
        record(2, "Korg MS-20 140144 synth", seller="bob", posted_at="2026-08-01T10:00:00+00:00"),
        [again],
    )
    with session_scope(engine) as session:
        app_id = session.scalar(select(Appearance.id).where(Appearance.listing_id == 2))
    client = client_for(engine, rules, root)
    html = client.get("/listing/2").text
    # Both listings' photos, each a thumbnail from this server linking to the full photo.
    for data in (*first, again):
        assert f'<img src="/photos/{sha(data)}/thumb"' in html
        assert f'href="/photos/{sha(data)}"' in html
    assert "https://img.example/" not in html.split("Photos of every appearance")[1].split("</section>")[0]
    # The re-uploaded plate and the original are marked as the same picture, linked to each other.
    assert re.search(rf'id="p{app_id}-\d+-0"', html)
    assert html.count('class="photo matched"') == 2
    assert 'class="match" href="#p' in html and "same picture (distance" in html
    assert "Repost: shares photos with" in html and 'href="/listing/1"' in html
    assert "No photo in common" not in html and "kinds unmatched" not in html  # they share a photo: one unit


def test_same_serial_without_a_shared_photo_offers_different_unit(engine: Engine, rules: Rules, root: Path) -> None:
    ingest(engine, rules, root, record(1, "Korg MS-20 s/n 141567", seller="a"), [jpeg(picture(5))])
    ingest(
        engine,
        rules,
        root,
        record(2, "Korg MS-20 141567", seller="b", posted_at="2026-08-01T10:00:00+00:00"),
        [jpeg(picture(6))],
    )
    with session_scope(engine) as session:
        later = session.scalar(select(Appearance.id).where(Appearance.listing_id == 2))
    html = client_for(engine, rules, root).get("/listing/1").text
    assert "No photo in common with listing 2." in html
    assert f'action="/appearances/{later}/unit" class="kinds unmatched"' in html  # the later sighting is split off


def test_nothing_kept_falls_back_to_links_and_the_csp_allows_only_this_origin(
    engine: Engine, rules: Rules, root: Path
) -> None:
    ingest(engine, rules, root, record(1, "Korg MS-20 140144"), [])
    client = client_for(engine, rules, root)
    response = client.get("/listing/1")
    assert response.headers["content-security-policy"] == CSP and "img-src 'self';" in CSP
    html = response.text
    assert "No photo kept. At the marketplace:" in html
    assert '<img src="https://img.example/1/0.jpg"' not in html and 'href="https://img.example/1/0.jpg"' in html

    remote = client_for(engine, rules, root, remote_photos=True).get("/listing/1")
    assert "img-src 'self' https: http:;" in remote.headers["content-security-policy"]
    assert '<img src="https://img.example/1/0.jpg"' in remote.text


def test_kept_photos_replace_the_marketplace_urls(engine: Engine, rules: Rules, root: Path) -> None:
    data = jpeg(picture(9))
    ingest(engine, rules, root, record(1, "Korg MS-20 140144"), [data])
    html = client_for(engine, rules, root, remote_photos=True).get("/listing/1").text
    assert f'<img src="/photos/{sha(data)}/thumb"' in html
    assert "https://img.example/1/0.jpg" not in html


def test_photo_reused_flag_shows_both_photos_and_the_earlier_listing(engine: Engine, rules: Rules, root: Path) -> None:
    front = picture(12)
    ingest(engine, rules, root, record(1, "Korg MS-20 s/n 140144"), [jpeg(front)])
    copy = reuploaded(front)
    ingest(engine, rules, root, record(2, "Korg MS-20 s/n 145201", posted_at="2026-05-01T10:00:00+00:00"), [copy])
    client = client_for(engine, rules, root)
    html = client.get("/listing/2").text
    card = html.split('class="code code-photo_reused"')[1].split("</section>")[0]
    assert f'<img src="/photos/{sha(copy)}/thumb"' in card and f'<img src="/photos/{sha(jpeg(front))}/thumb"' in card
    assert 'photo 1 is photo 1 of <a href="/listing/1">listing 1</a> (MS-20 140144)' in card
    queue = client.get("/").text
    assert "photo_reused" in queue and "earlier listing 1 (MS-20 140144)" in queue
