"""Issue 17.5: a full disk during a crawl. A listing whose evidence cannot be written is stored all the same
(its evidence marked missing, the run `degraded`); a dead letter that cannot be written fails the run loudly
(`failed`, exit non-zero, the reason in `crawl_runs`), and never leaves a half-written line behind.

The full disk is a private tmpfs filled to the last byte where this machine allows mounting (skipped with the
reason where it does not); the dead-letter case also runs without mounting, its file a link to /dev/full,
which answers every write with ENOSPC as a full disk does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_crawl_support import REPO_ROOT, CrawlResult, loopback_site, mount_samples, run_crawl, write_sources

from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import CrawlRun, Listing

REFUSE_LISTINGS = (
    "CREATE TRIGGER test_refuses_listings BEFORE INSERT ON listings "
    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
)


@contextlib.contextmanager
def tmpfs(mountpoint: Path, size: str = "256k") -> Iterator[Path]:
    """A private tmpfs at `mountpoint` (256 KiB unless told), unmounted afterwards; a skip with the reason if not
    allowed."""
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "korgwatch-test", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode}): no full disk")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(mountpoint: Path) -> None:
    """Write until the file system is full: every new byte in it then fails with ENOSPC."""
    with contextlib.suppress(OSError), (mountpoint / "filler").open("wb", buffering=0) as filler:
        while True:
            filler.write(b"\0" * 4096)
    with pytest.raises(OSError) as full:
        (mountpoint / "probe").write_bytes(b"x" * 4096)
    assert full.value.errno == errno.ENOSPC


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "full") as mountpoint:
        fill(mountpoint)
        yield mountpoint


def crawl(tmp_path: Path, db_url: str, *settings: str, name: str) -> CrawlResult:
    with loopback_site() as site:
        mount_samples(site)
        config = write_sources(tmp_path / f"{name}.yaml", site)
        extra: list[str] = ["--impolite", "--set", "LOG_LEVEL=WARNING"]  # Spidermon's INFO report quotes tracebacks
        for setting in settings:
            extra += ["--set", setting]
        return run_crawl(tmp_path, ["matrixsynth"], config, db_url, *extra, name=name)


@pytest.fixture(scope="module")
def expected_listings(tmp_path_factory: pytest.TempPathFactory) -> int:
    """What a crawl of the loopback site stores on a healthy disk."""
    tmp = tmp_path_factory.mktemp("reference")
    db_url = f"sqlite:///{tmp / 'reference.sqlite'}"
    result = crawl(tmp, db_url, name="reference")
    assert result.runs["matrixsynth"]["outcome"] == "ok"
    return stored(db_url)[0]


def stored(db_url: str) -> tuple[int, list[dict[str, object]]]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            count = int(session.scalar(select(func.count()).select_from(Listing)) or 0)
            extras = [dict(e or {}) for e in session.scalars(select(Listing.extra))]
            return count, extras
    finally:
        engine.dispose()


def recorded_run(db_url: str) -> CrawlRun:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            runs = list(session.scalars(select(CrawlRun)))
            assert len(runs) == 1
            return runs[0]
    finally:
        engine.dispose()


def refusing_store(db_url: str) -> str:
    """A store that refuses every new listing (as it refuses a poisoned record), so each goes to the dead letters."""
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(REFUSE_LISTINGS)
    finally:
        engine.dispose()
    return db_url


def test_evidence_on_a_full_disk_does_not_drop_the_listings(
    tmp_path: Path, full_disk: Path, sqlite_url: str, expected_listings: int
) -> None:
    result = crawl(tmp_path, sqlite_url, f"KORGWATCH_EVIDENCE_DIR={full_disk / 'evidence'}", name="full")
    run = result.runs["matrixsynth"]
    count, extras = stored(sqlite_url)
    assert count == expected_listings  # every listing stored, none dropped with its page
    assert all("No space left on device" in str(extra.get("evidence_missing")) for extra in extras)
    assert not any("evidence_sha256" in extra for extra in extras)
    assert run["outcome"] == "degraded" and result.returncode == 1
    assert "evidence not kept: No space left on device" in recorded_run(sqlite_url).log_tail
    assert "Traceback" not in result.stderr


def check_run_failed_loudly(result: CrawlResult, db_url: str) -> None:
    run = result.runs["matrixsynth"]
    assert result.returncode == 1
    assert run["outcome"] == "failed"
    assert any("listings lost" in m and "No space left on device" in m for m in run["messages"])
    row = recorded_run(db_url)
    assert row.outcome == "failed"
    assert "listings lost" in (row.log_tail or "") and "No space left on device" in (row.log_tail or "")
    assert "Traceback" not in result.stderr


def test_a_dead_letter_on_a_full_disk_fails_the_run(tmp_path: Path, full_disk: Path, sqlite_url: str) -> None:
    letters = full_disk / "dead-letter"
    result = crawl(
        tmp_path,
        refusing_store(sqlite_url),
        f"KORGWATCH_DEAD_LETTER_DIR={letters}",
        "KORGWATCH_STORE_RETRIES=0",
        name="full",
    )
    check_run_failed_loudly(result, sqlite_url)
    assert all(path.stat().st_size == 0 for path in letters.glob("*")), "no half-written dead letter"


def test_a_dead_letter_refused_with_enospc_fails_the_run_without_mounting(tmp_path: Path, sqlite_url: str) -> None:
    letters = tmp_path / "dead-letter"
    letters.mkdir()
    # The pipeline names the file by the UTC date of the failure (a test run at midnight would miss it).
    (letters / f"matrixsynth-{datetime.now(UTC):%Y%m%d}.jsonl").symlink_to("/dev/full")
    result = crawl(
        tmp_path,
        refusing_store(sqlite_url),
        f"KORGWATCH_DEAD_LETTER_DIR={letters}",
        "KORGWATCH_STORE_RETRIES=0",
        name="devfull",
    )
    check_run_failed_loudly(result, sqlite_url)


def test_a_store_on_a_full_disk_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    # Room for the whole schema first (its tables, indexes and triggers); then the disk is filled.
    with tmpfs(tmp_path / "full", size="2m") as mountpoint, loopback_site() as site:
        mount_samples(site)
        config = write_sources(tmp_path / "sources.yaml", site)
        db_url = f"sqlite:///{mountpoint / 'korgwatch.sqlite'}"
        upgrade(db_url)
        fill(mountpoint)
        argv = [sys.executable, "-m", "crawler.run", "matrixsynth", "--config", str(config), "--db", db_url]
        env = {**os.environ, "KORGWATCH_DATA_DIR": str(tmp_path / "data")}
        done = subprocess.run(
            [*argv, "--impolite", "--no-progress"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "the store failed: OperationalError:" in last
    # SQLite says "database or disk is full", or only "disk I/O error" when the journal's write was refused
    assert last.endswith(("database or disk is full", "disk I/O error (the disk holding the store is full)"))


def test_unfinished_evidence_writes_of_a_killed_crawl_are_removed_at_the_next_start(tmp_path: Path) -> None:
    from crawler.evidence import PARTIAL_MAX_AGE, clean_partial_writes, store_evidence

    root = tmp_path / "evidence"
    kept = store_evidence(root, b"<html>a page</html>")
    folder = root / kept[:2]
    stale, fresh = folder / ".tmp-killed", folder / ".tmp-being-written"
    stale.write_bytes(b"\x1f\x8b half")
    fresh.write_bytes(b"\x1f\x8b half")
    old = stale.stat().st_mtime - PARTIAL_MAX_AGE - 60
    os.utime(stale, (old, old))
    assert clean_partial_writes(root) == 1
    assert not stale.exists() and fresh.exists()  # another crawl may be writing this one now
    assert (folder / f"{kept}.gz").exists()
