"""The scheduler sends the digest of each of its runs: real crawls of the sample site, real HTTP to a sink."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.notify.sink import Sink
from test_scheduler import CRAWL_WAIT, runs_of, start, wait_for, write_schedule

from korgwatch.scheduling.service import SchedulerService


@pytest.mark.slow
def test_scheduler_sends_one_digest_per_run_with_new_listings(
    tmp_path: Path, sqlite_url: str, services: list[SchedulerService], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Sink() as sink:
        notify = tmp_path / "notify.yaml"
        notify.write_text(f'targets:\n  - url: "{sink.url}"\n', encoding="utf-8")
        monkeypatch.setenv("KORGWATCH_NOTIFY_CONFIG", str(notify))
        path = write_schedule(tmp_path, {"matrixsynth": {"enabled": True, "interval": "1h"}})
        service = start(path, sqlite_url, services)
        assert service.notifier is not None
        wait_for(lambda: sink.messages, 2 * CRAWL_WAIT, "a digest")
        service.stop()
        first = runs_of(sqlite_url, "matrixsynth")[0]
        digests = [m for m in sink.messages if "matrixsynth run" in m["title"]]
        assert digests and f"matrixsynth run {first.id} (ok)" in digests[0]["title"]
        assert "new sighting" in digests[0]["message"] or "flag opened" in digests[0]["message"]
        titles = [m["title"] for m in digests]
        assert len(titles) == len(set(titles))  # one digest per run, never two
