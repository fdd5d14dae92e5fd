"""`korgwatch demo` shows where its notifications would have gone: one digest per crawl run, received over real
HTTP by a loopback recorder and printed at the end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.sources import load_sources

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_prints_the_digest_of_each_run_sent_to_a_loopback_target(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EBAY_", "KORGWATCH_"))}
    env |= {"KORGWATCH_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "korgwatch.commands.crawling", "demo", "--no-progress"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    match = re.search(r"Notifications: (\d+) messages to json://127\.0\.0\.1:\d+/demo", done.stdout)
    assert match, done.stdout[-3000:]
    enabled = [source.name for source in load_sources().enabled()]
    digests = re.findall(r"korgwatch: (\w+) run \d+ \(ok\)", done.stdout)
    assert sorted(digests) == sorted(enabled)  # one per run, every run had new listings
    assert int(match.group(1)) >= len(enabled)
