"""`korgwatch crawl` (the Typer command) against a loopback site: one source moved with --base-url."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_crawl_support import REPO_ROOT, loopback_site, mount_samples, write_sources


def test_crawl_command_moves_a_source_with_base_url(tmp_path: Path) -> None:
    with loopback_site() as site:
        mount_samples(site)
        config = write_sources(tmp_path / "sources.yaml", site)
        # The config points elsewhere: --base-url alone must bring the source to this site.
        text = config.read_text(encoding="utf-8").replace(site.base_url("matrixsynth"), "https://www.matrixsynth.com")
        config.write_text(text, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EBAY_", "KORGWATCH_"))}
        env |= {"KORGWATCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "korgwatch.commands.crawling",
                "crawl",
                "matrixsynth",
                "--base-url",
                site.base_url("matrixsynth"),
                "--config",
                str(config),
                "--db",
                f"sqlite:///{tmp_path / 'k.sqlite'}",
                "--json",
                str(tmp_path / "runs.json"),
                "--no-progress",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Crawl summary" in done.stdout and "matrixsynth" in done.stdout
    (run,) = json.loads((tmp_path / "runs.json").read_text(encoding="utf-8"))
    assert (run["source"], run["outcome"], run["pages"], run["listings_new"]) == ("matrixsynth", "ok", 2, 5)
    assert len(site.requests("/matrixsynth/feeds/")) == 2
    assert done.stderr.strip() == ""  # quiet by default: warnings and errors only


def test_crawl_command_rejects_unknown_source(tmp_path: Path) -> None:
    env = dict(os.environ, KORGWATCH_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "korgwatch.commands.crawling", "crawl", "craigslist", "--no-progress"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown source 'craigslist'" in done.stderr
    assert "Traceback" not in done.stderr
