"""Crawl processes that do not outlive the scheduler, and their temporary folders cleaned after a crash.

A crawl runs in its own session (so the time limit can kill its whole group), which also means it no longer
dies with the scheduler's terminal or process group: without help, a SIGKILLed scheduler leaves its crawls
running with no time limit. On Linux the kernel's PR_SET_PDEATHSIG (prctl(2), through ctypes: the standard
library has no wrapper) SIGKILLs the child when the thread that started it ends; the crawl's open run is then
closed `interrupted` by the next crawl of the source. Elsewhere the lease in the database (db.run_ledger) still
keeps a second crawl of the source from starting beside an orphan.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from db.run_ledger import owner_alive, process_owner

logger = logging.getLogger("korgwatch.scheduler")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WORK_PREFIX = "korgwatch-crawl-"
OWNER_FILE = "scheduler.owner"


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel SIGKILL the child when its parent thread ends (Linux; else None).

    Runs in the child between fork and exec. If the parent died before the prctl took effect, the child
    would be orphaned already: it exits at once instead.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    # Resolved here, in the parent: the child, forked from a threaded scheduler, only makes the one call.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    deathsig = int(signal.SIGKILL)

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, deathsig, 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(70)

    return preexec


def make_work_dir(source: str) -> Path:
    """A temporary folder for one crawl, marked with this scheduler so that a later start can clean it."""
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{source}-"))
    (work / OWNER_FILE).write_text(process_owner(), encoding="ascii")
    return work


def clean_stale_work_dirs(root: Path | None = None) -> list[Path]:
    """Remove the crawl folders of schedulers that are gone (killed before they could remove them)."""
    removed = []
    for work in sorted(Path(root or tempfile.gettempdir()).glob(f"{WORK_PREFIX}*")):
        try:
            owner = (work / OWNER_FILE).read_text(encoding="ascii").strip()
        except OSError:
            continue  # not one of ours, or being created right now
        if owner_alive(owner) is False:
            shutil.rmtree(work, ignore_errors=True)
            removed.append(work)
    if removed:
        logger.info("removed %d crawl folders left by a scheduler that was killed", len(removed))
    return removed
