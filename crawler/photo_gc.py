"""Free the kept photos no listing uses any more: their `photos` rows, files and thumbnails.

Safe beside a running crawl: the crawl writes a photo's file before it commits the rows naming it, so a file
or row younger than the grace period (an hour by default, far longer than a crawl's transaction) is left
alone, and each file is checked against the store again just before it is removed. Only names of the
content-addressed layout (`<root>/<sha[:2]>/<sha>`, `<root>/thumbs/<sha[:2]>/<sha>.jpg`) are ever touched:
anything else in the folder is not ours to delete.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from db.engine import read_scope, session_scope
from db.photo_queries import delete_unreferenced_photos, is_referenced, referenced_shas, unreferenced_photos

GRACE = timedelta(hours=1)
THUMBS = "thumbs"
THUMB_SUFFIX = ".jpg"
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class GcReport:
    """What a collection freed, and what it left because it was too young to judge."""

    rows: int
    files: int
    thumbnails: int
    bytes_freed: int
    young: int
    dry_run: bool

    def describe(self) -> str:
        verb = "would free" if self.dry_run else "freed"
        line = (
            f"{verb} {self.files} photo file(s) and {self.thumbnails} thumbnail(s), {self.bytes_freed} bytes; "
            f"{'would delete' if self.dry_run else 'deleted'} {self.rows} unused photos row(s)"
        )
        if self.young:
            line += f"; left {self.young} unused file(s) younger than the grace period (a crawl may be writing them)"
        return line


def content_files(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """(sha256, path, is thumbnail) of every file laid out as the photo store writes them; nothing else."""
    for folder, thumbnail in ((root, False), (root / THUMBS, True)):
        try:
            fans = [
                entry for entry in os.scandir(folder) if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False)
            ]
        except FileNotFoundError:
            continue
        for fan in fans:
            for entry in os.scandir(fan.path):
                name = entry.name.removesuffix(THUMB_SUFFIX) if thumbnail else entry.name
                if thumbnail and not entry.name.endswith(THUMB_SUFFIX):
                    continue
                if _SHA.fullmatch(name) and name[:2] == fan.name and entry.is_file(follow_symlinks=False):
                    yield name, Path(entry.path), thumbnail


def collect(
    engine: Engine, root: Path, grace: timedelta = GRACE, dry_run: bool = False, now: datetime | None = None
) -> GcReport:
    """Delete unused `photos` rows older than `grace`, then the files no row names, older than `grace`."""
    cutoff = (now or datetime.now(UTC)) - grace
    if dry_run:
        with read_scope(engine) as session:
            unused = unreferenced_photos(session, cutoff)
            needed = referenced_shas(session) - {sha for _, sha, _ in unused}
        rows = len(unused)
    else:
        with session_scope(engine) as session:
            unused = unreferenced_photos(session, cutoff)
            rows = delete_unreferenced_photos(session, [photo_id for photo_id, _, _ in unused], cutoff)
        with read_scope(engine) as session:
            needed = referenced_shas(session)
    files = thumbnails = freed = young = 0
    for sha, path, thumbnail in content_files(root):
        if sha in needed:
            continue
        stat = path.stat(follow_symlinks=False)
        if datetime.fromtimestamp(stat.st_mtime, UTC) > cutoff:
            young += 1
            continue
        if not dry_run:
            with read_scope(engine) as session:
                if is_referenced(session, sha):  # stored by a crawl since the list was read
                    continue
            path.unlink(missing_ok=True)
        freed += stat.st_size
        if thumbnail:
            thumbnails += 1
        else:
            files += 1
    return GcReport(rows, files, thumbnails, freed, young, dry_run)
