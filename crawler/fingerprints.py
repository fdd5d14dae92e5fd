"""Perceptual fingerprints of listing photos, so a photo re-uploaded by a marketplace still matches itself.

Marketplaces re-encode, resize and recompress every upload and give it a new URL, so neither the URL nor the
file's sha256 survives a repost. Two of imagehash's 64-bit hashes do:
- pHash (DCT of a 32x32 greyscale image, low frequencies against their median): robust to re-encoding,
  resizing, gamma and light crops; the main test of "the same photo".
- dHash (signs of horizontal gradients on a 9x8 image): cheap and independent of pHash's transform, so a pair
  must agree on both to count as a match, which keeps two different photos of the same model apart.
Hashes are stored as signed 64-bit integers (BIGINT on both backends); `bands` splits a pHash into the four
16-bit quarters that `photo_hash_bands` indexes.
"""

from __future__ import annotations

from typing import NamedTuple

import imagehash
from PIL import Image

BITS = 64
BANDS = 4
BAND_BITS = BITS // BANDS
_TOP = 1 << (BITS - 1)
_MASK = (1 << BITS) - 1

#: pHash and dHash distance up to which two photos count as the same picture, both hashes at once. Chosen from
#: the variant set of tests/test_photo_fingerprints.py (docs/photos.md, "Fingerprints"): re-encodes, resizes, WebP
#: recompression, brightness changes and crops up to 3.5 % stay within 6 (pHash) and 8 (dHash); crops of 5 %
#: reach 12 and 10; the nearest different photos are at pHash 10 (two MS-20 plates, dHash 32) and dHash 13.
SAME_PHOTO_DISTANCE = 10
#: The short side an image is box-reduced towards before hashing (pHash reads a 32x32 image of it).
SMALL_SIDE = 128


class Fingerprint(NamedTuple):
    """A photo's two perceptual hashes, as the signed integers the database keeps."""

    phash: int
    dhash: int


def _as_int(value: imagehash.ImageHash) -> int:
    return int(str(value), 16)  # imagehash's hex form: the 64 bits row by row, first bit highest


def to_signed(unsigned: int) -> int:
    """A 64-bit unsigned hash as the signed integer a BIGINT column holds."""
    return unsigned - (1 << BITS) if unsigned & _TOP else unsigned


def to_unsigned(signed: int) -> int:
    return signed & _MASK


def fingerprint(image: Image.Image) -> Fingerprint:
    """pHash and dHash of an opened image (any mode; the first frame of an animation).

    The greyscale image is first box-reduced to about SMALL_SIDE pixels on its short side: imagehash's own
    Lanczos resize from a marketplace-sized photo straight to 32x32 costs five times the rest of the work, and
    the box filter averages every pixel as well (benchmarks/bench_photos.py).
    """
    grey = image.convert("L")
    factor = min(grey.size) // SMALL_SIDE
    if factor > 1:
        grey = grey.reduce(factor)
    return Fingerprint(to_signed(_as_int(imagehash.phash(grey))), to_signed(_as_int(imagehash.dhash(grey))))


def distance(a: int, b: int) -> int:
    """Hamming distance between two stored (signed) 64-bit hashes."""
    return ((a ^ b) & _MASK).bit_count()  # XOR of two's complement values: the same bits as of the unsigned ones


def is_same_photo(a: Fingerprint, b: Fingerprint, max_distance: int = SAME_PHOTO_DISTANCE) -> bool:
    """Whether two fingerprints show the same picture: both hashes within the distance."""
    return distance(a.phash, b.phash) <= max_distance and distance(a.dhash, b.dhash) <= max_distance


def bands(signed: int) -> list[tuple[int, int]]:
    """(band number, 16-bit value) of a stored hash, for the near-duplicate index."""
    unsigned = to_unsigned(signed)
    return [(band, (unsigned >> (band * BAND_BITS)) & ((1 << BAND_BITS) - 1)) for band in range(BANDS)]
