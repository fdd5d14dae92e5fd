"""Issue 17.4: a run that logged errors closes `degraded`, whether or not the monitors ran (Spidermon off, or
failing to report), because the outcome is read from the run's own error count too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_crawl_support import loopback_site, mount_samples, run_crawl, text, write_sources

FEED = "/matrixsynth/feeds/posts/default"


@pytest.mark.parametrize("monitors", ["true", "false"])
def test_a_run_with_errors_is_degraded(tmp_path: Path, sqlite_url: str, monitors: str) -> None:
    with loopback_site() as site:
        mount_samples(site)
        site.route(FEED, text("gone", "text/plain", status=404), when=lambda q: q.get("start-index") == "4")
        config = write_sources(tmp_path / "sources.yaml", site)
        result = run_crawl(
            tmp_path, ["matrixsynth"], config, sqlite_url, "--impolite", "--set", f"SPIDERMON_ENABLED={monitors}"
        )
    run = result.runs["matrixsynth"]
    assert run["errors"] == 1 and run["pages"] == 1 and run["listings_new"] > 0
    assert run["outcome"] == "degraded"
    assert result.returncode == 1
    assert any("HTTP 404" in message for message in run["messages"])
