"""Where kept photos live on disk: content-addressed files under the data directory, written atomically.

One module owns the layout so that the crawl that writes, the review page that serves and `photos gc` that
removes agree: `<root>/<sha[:2]>/<sha>` holds the original bytes, `<root>/thumbs/<sha[:2]>/<sha>.jpg` a JPEG
thumbnail at most THUMB_SIZE pixels on its longer side with no EXIF (a seller's camera, GPS position and
serial number stay out of what the review page shows). A path is built from a sha256 only, never from a URL
or any other scraped text, and a file is written once however many listings show it.
"""

from __future__ import annotations

import os
import re
import tempfile
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps

THUMB_SIZE = 320
THUMB_QUALITY = 85
_SHA256 = re.compile(r"[0-9a-f]{64}")


def photo_dir() -> Path:
    """The default root of kept photos: `<data dir>/photos`."""
    from korgwatch.paths import data_dir

    return data_dir() / "photos"


def _checked(sha256: str) -> str:
    """A path is only ever built from a lowercase hex sha256: anything else could climb out of the root."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return sha256


def photo_path(root: Path, sha256: str) -> Path:
    """The original file of the photo with this sha256."""
    sha = _checked(sha256)
    return root / sha[:2] / sha


def thumb_path(root: Path, sha256: str) -> Path:
    """The photo's thumbnail (JPEG, EXIF stripped)."""
    sha = _checked(sha256)
    return root / "thumbs" / sha[:2] / f"{sha}.jpg"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path` and rename it in: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_thumbnail(image: Image.Image, size: int = THUMB_SIZE) -> bytes:
    """A JPEG of `image` at most `size` px on its longer side, upright (EXIF orientation applied) and with no
    metadata: Pillow writes EXIF only when asked, and the orientation is baked into the pixels first."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode not in ("RGB", "L"):
        background = Image.new("RGB", upright.size, "white")
        rgba = upright.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        upright = background
    small = upright.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = BytesIO()
    small.save(out, "JPEG", quality=THUMB_QUALITY, optimize=True)
    return out.getvalue()


def store_photo(root: Path, sha256: str, body: bytes, thumbnail: bytes) -> bool:
    """Keep a photo and its thumbnail under its sha256, once; True if it was written now, False if already kept."""
    original = photo_path(root, sha256)
    thumb = thumb_path(root, sha256)
    written = False
    for path, data in ((original, body), (thumb, thumbnail)):
        if path.exists():
            os.utime(path)  # in use again now: `photos gc` leaves files younger than its grace period alone
        else:
            _write_atomically(path, data)
            written = True
    return written
