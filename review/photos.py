"""Kept photos on the review page: served from the store by hash only, and laid side by side per serial.

The reviewer compares plates, screws and scratches across every appearance of a serial, so the listing page
shows each appearance's kept photos in a column, the photos that match across columns (same picture,
`db.photo_matching.shared_photos`) marked and linked to each other. The files come from the content-addressed
store the crawl fills; the route takes a sha256 (`^[0-9a-f]{64}$`), looks it up among the kept photos and
serves that file: never a path from the request, never a fetch by the server. A listing with nothing kept
falls back to its marketplace URLs, as links (or as images with `remote_photos`, which widens the CSP).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from crawler.photo_store import photo_dir, photo_path, thumb_path
from db.models import Appearance, Listing, Photo
from db.photo_matching import KeptPhoto, kept_photos, shared_photos
from review.present import safe_url

SHA256 = re.compile(r"[0-9a-f]{64}")
#: What the crawl keeps (issue 15: JPEG, PNG, WebP, GIF first frame); anything else in a row is not served.
SERVED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
#: Content-addressed: a file under a hash never changes, so browsers may keep it (privately: it may sit
#: behind the review password).
PHOTO_CACHE_CONTROL = "private, max-age=31536000, immutable"
MAX_COLUMNS = 12  # appearances shown side by side per serial (the newest ones beyond that are left out)


def default_photo_root() -> Path:
    return photo_dir()


# --- the route --------------------------------------------------------------------------------------------


def _kept_mime(request: Request, sha: str) -> str | None:
    from db.engine import session_factory

    with session_factory(request.app.state.read_engine)() as session:
        return session.scalar(select(Photo.mime).where(Photo.sha256 == sha))


async def photo_file(request: Request) -> Response:
    """`/photos/<sha256>` (the kept file) and `/photos/<sha256>/thumb` (its 320 px JPEG, EXIF stripped)."""
    sha = str(request.path_params["sha"])
    if not SHA256.fullmatch(sha):
        raise HTTPException(404, "not a photo: photos are named by their sha256 (64 lower-case hex digits)")
    mime = await run_in_threadpool(_kept_mime, request, sha)
    if mime is None:
        raise HTTPException(404, f"no kept photo {sha}")
    thumb = request.url.path.endswith("/thumb")
    media_type = "image/jpeg" if thumb else mime
    if media_type not in SERVED_TYPES:
        raise HTTPException(404, f"photo {sha} is not of a type this page serves")
    root: Path = request.app.state.photo_root
    path = thumb_path(root, sha) if thumb else photo_path(root, sha)
    if not path.is_file():
        raise HTTPException(404, f"photo {sha} is not in the store")
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Cache-Control": PHOTO_CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
        },
    )


# --- side by side -----------------------------------------------------------------------------------------


@dataclass
class ShownPhoto:
    """One kept photo in a column, with the photos of other columns that are the same picture."""

    position: int
    sha256: str
    anchor: str
    matches: list[tuple[str, str]] = field(default_factory=list)  # (anchor, words) of the same picture elsewhere


@dataclass
class PhotoColumn:
    """One appearance of the serial: its kept photos, else its marketplace URLs."""

    appearance_id: int
    listing_id: int
    this: bool
    photos: list[ShownPhoto]
    remote: list[str]
    shares: bool = False  # shares a photo with this listing's column
    label: str = ""


@dataclass
class PhotoPanel:
    """The photos of every appearance of one serial, for one appearance on the listing page."""

    columns: list[PhotoColumn]

    @property
    def any_kept(self) -> bool:
        return any(c.photos for c in self.columns)

    def unmatched(self) -> list[tuple[PhotoColumn, int]]:
        """Other appearances with kept photos none of which is in this listing's (maybe another unit), each with
        the appearance a "different unit" decision would split off: the later of the two."""
        index = next((i for i, c in enumerate(self.columns) if c.this), None)
        if index is None or not self.columns[index].photos:
            return []
        this = self.columns[index]
        return [
            (c, c.appearance_id if i > index else this.appearance_id)
            for i, c in enumerate(self.columns)
            if not c.this and c.photos and not c.shares
        ]


def listing_photos(session: Session, listing: Listing) -> tuple[list[KeptPhoto], list[str]]:
    """A listing's kept photos, and its marketplace URLs (the fallback when nothing was kept)."""
    kept = kept_photos(session, [listing.id]).get(listing.id, [])
    return kept, [u for u in (safe_url(i) for i in listing.images or []) if u]


def photo_panels(
    session: Session, listing_id: int, timelines: Sequence[tuple[int, Sequence[Any]]]
) -> dict[int, PhotoPanel]:
    """A panel per (appearance id, its serial's timeline of HistoryItem): one column per appearance, matches
    between columns marked. Reads the appearances' listings and their kept photos only."""
    app_ids = sorted({item.appearance_id for _, items in timelines for item in items[:MAX_COLUMNS]})
    if not app_ids:
        return {}
    where: dict[int, int] = dict(
        session.execute(select(Appearance.id, Appearance.listing_id).where(Appearance.id.in_(app_ids))).all()
    )
    images: dict[int, list[str]] = {
        lid: list(urls or [])
        for lid, urls in session.execute(
            select(Listing.id, Listing.images).where(Listing.id.in_(sorted(set(where.values()))))
        ).all()
    }
    photos = kept_photos(session, where.values())
    panels: dict[int, PhotoPanel] = {}
    for appearance_id, items in timelines:
        columns: list[PhotoColumn] = []
        for item in items[:MAX_COLUMNS]:
            lid = where.get(item.appearance_id)
            if lid is None:
                continue
            kept = photos.get(lid, [])
            shown = [
                ShownPhoto(p.position, p.sha256, f"p{appearance_id}-{item.appearance_id}-{p.position}") for p in kept
            ]
            remote = [] if kept else [u for u in (safe_url(i) for i in images.get(lid, [])) if u]
            label = f"{item.seen_at:%Y-%m-%d} · {item.source}" + (f" · {item.seller}" if item.seller else "")
            columns.append(PhotoColumn(item.appearance_id, lid, lid == listing_id, shown, remote, label=label))
        _mark_matches(columns, photos)
        panels[appearance_id] = PhotoPanel(columns)
    return panels


def _mark_matches(columns: list[PhotoColumn], photos: dict[int, list[KeptPhoto]]) -> None:
    """Link every photo to the same picture in the other columns; note which columns share one with this one."""
    for i, left in enumerate(columns):
        for right in columns[i + 1 :]:
            if left.listing_id == right.listing_id:
                continue
            pairs = shared_photos(photos.get(left.listing_id, []), photos.get(right.listing_id, []))
            for pair in pairs:
                a = next(p for p in left.photos if p.position == pair["position"])
                b = next(p for p in right.photos if p.position == pair["earlier_position"])
                words = f"same picture (distance {pair['distance']})"
                a.matches.append((b.anchor, f"{words}: photo {b.position + 1} of {right.label}"))
                b.matches.append((a.anchor, f"{words}: photo {a.position + 1} of {left.label}"))
            if pairs and (left.this or right.this):
                left.shares = right.shares = True


@dataclass(frozen=True, slots=True)
class ReusedMatch:
    """One pair of a `photo_reused` flag, checked for display: this listing's photo and the earlier one."""

    position: int
    sha256: str
    listing_id: int
    serials: str
    earlier_position: int
    earlier_sha256: str
    distance: int


def reused_matches(details: dict[str, Any]) -> list[ReusedMatch]:
    """The pairs a `photo_reused` flag names (db.photo_matching), skipping any entry that is not well formed:
    the hashes go into URLs, so only 64-hex-digit ones pass."""
    found = []
    for entry in details.get("matches") or ():
        try:
            match = ReusedMatch(
                int(entry["position"]),
                str(entry["sha256"]),
                int(entry["listing_id"]),
                ", ".join(str(s) for s in entry.get("serials") or ()),
                int(entry["earlier_position"]),
                str(entry["earlier_sha256"]),
                int(entry["distance"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if SHA256.fullmatch(match.sha256) and SHA256.fullmatch(match.earlier_sha256):
            found.append(match)
    return found
