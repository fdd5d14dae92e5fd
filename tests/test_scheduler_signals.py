"""SIGTERM to a `korgwatch schedule run` process mid-crawl: no orphaned crawl process, no half-written run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_scheduler import CRAWL_WAIT, REPO_ROOT, runs_of, wait_for, write_schedule


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc, so no psutil needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def test_sigterm_mid_run_leaves_no_orphan_and_no_half_written_row(tmp_path: Path) -> None:
    path = write_schedule(
        tmp_path, {"matrixsynth": {"enabled": True, "interval": "1h", "stop_grace": "0s"}}, sample_interval="1s"
    )
    db_url = f"sqlite:///{tmp_path / 'k.sqlite'}"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "korgwatch.commands.schedule", "schedule", "run", "--config", str(path), "--db", db_url],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        (crawl,) = wait_for(lambda: children(scheduler.pid), CRAWL_WAIT, "the crawl process")
        time.sleep(0.5)  # let it get into the crawl
        scheduler.send_signal(signal.SIGTERM)
        _, stderr = scheduler.communicate(timeout=30)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    assert scheduler.returncode == 0, stderr[-3000:]
    assert "SIGTERM: stopping" in stderr
    assert not os.path.exists(f"/proc/{crawl}"), "the crawl outlived the scheduler"
    assert group_members(crawl) == []  # nothing left in the crawl's process group either

    runs = runs_of(db_url, "matrixsynth")
    assert len(runs) == 1  # the interrupted run, recorded once, whole
    (run,) = runs
    # Killed half a second in (a crawl takes seconds to start): the scheduler wrote the row, whole, and said why.
    assert (run.outcome, run.finished_at is not None) == ("failed", True)
    assert "scheduler stopped" in (run.log_tail or "")
