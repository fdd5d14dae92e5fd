"""`photos:` in config/sources.yaml: global limits, per-source switches and overrides, errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from crawler.sources import PHOTO_TYPES, PILLOW_MAX_PIXELS, PhotoLimits, SourcesError, load_sources
from korgwatch.paths import PROJECT_ROOT

HEAD = "contact_url: https://example.org/korgwatch-tests\n"
REVERB = "  reverb:\n    base_url: http://127.0.0.1:1\n    queries: [korg]\n"
EBAY = "  ebay:\n    base_url: http://127.0.0.1:1\n    queries: [korg]\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_file_keeps_photos_with_the_documented_defaults() -> None:
    config = load_sources(PROJECT_ROOT / "config" / "sources.yaml")
    assert config.photos == PhotoLimits(True, 12, 8 * 1024 * 1024, PHOTO_TYPES, PILLOW_MAX_PIXELS)
    assert all(source.photos == config.photos for source in config.sources.values())
    assert PILLOW_MAX_PIXELS == Image.MAX_IMAGE_PIXELS  # Pillow's own bomb limit, not a looser one


def test_a_source_switches_photos_off_or_changes_one_limit_over_the_global_ones(tmp_path: Path) -> None:
    text = HEAD + "photos:\n  per_listing: 6\nsources:\n" + REVERB + "    photos: false\n" + EBAY
    text += "    photos:\n      max_bytes: 1000000\n      types: [JPEG, png]\n"
    config = load_sources(write(tmp_path, text))
    assert config.source("reverb").photos == PhotoLimits(enabled=False, per_listing=6)
    assert config.source("ebay").photos == PhotoLimits(per_listing=6, max_bytes=1_000_000, types=("jpeg", "png"))


@pytest.mark.parametrize(
    ("block", "line", "expected"),
    [
        ("photos:\n  per_listin: 3\n", 3, "photos.per_listin: unknown setting"),
        ("photos:\n  per_listing: -1\n", 3, "photos.per_listing: must be a whole number of at least 0, not -1"),
        ("photos:\n  max_bytes: 8 MB\n", 3, "photos.max_bytes: must be a whole number of at least 1, not '8 MB'"),
        (
            "photos:\n  types: [jpeg, tiff]\n",
            3,
            "photos.types: must be a non-empty list of jpeg, png, webp, gif (unknown: tiff)",
        ),
        (
            "photos:\n  max_pixels: 200000000\n",
            3,
            "photos.max_pixels: must not exceed Pillow's decompression-bomb limit",
        ),
        ("photos: yes please\n", 2, "photos must be true, false or a mapping"),
    ],
)
def test_a_bad_photo_setting_names_the_file_the_line_and_the_key(
    tmp_path: Path, block: str, line: int, expected: str
) -> None:
    path = write(tmp_path, HEAD + block + "sources:\n" + REVERB)
    with pytest.raises(SourcesError) as raised:
        load_sources(path)
    assert f"{path}:{line}: {expected}" in str(raised.value)


def test_a_bad_per_source_photo_setting_names_the_source(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "sources:\n" + REVERB + "    photos:\n      enabled: maybe\n")
    with pytest.raises(SourcesError) as raised:
        load_sources(path)
    assert f"{path}:7: source 'reverb': photos.enabled: must be true or false, not 'maybe'" in str(raised.value)
