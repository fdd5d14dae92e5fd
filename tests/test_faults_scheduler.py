"""Issue 17.3: the scheduler SIGKILLed mid-crawl. Its crawl dies with it (PR_SET_PDEATHSIG), the crawl's folder
is cleaned at the next start, and "one crawl per source at a time" holds across the restart because the lease
is the crawl's open run in the database, not the scheduler's memory.

The scheduler's own crawl launcher (CrawlRunner) runs in a subprocess that the test kills by pid, while the
crawl it started waits on the loopback site's held second page.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_crawl_support import REPO_ROOT, LoopbackSite, write_sources
from test_faults_crash import HeldPage, held_loopback, runs, start_crawl, wait_for
from test_scheduler_signals import children

from db.engine import make_engine, read_scope, session_scope
from db.run_ledger import begin_local_run, running_local_run
from korgwatch.scheduling.children import OWNER_FILE, clean_stale_work_dirs
from korgwatch.scheduling.config import load_schedule
from korgwatch.scheduling.runner import CrawlRunner


@pytest.fixture
def held_site() -> Iterator[tuple[LoopbackSite, HeldPage]]:
    with held_loopback() as site_and_page:
        yield site_and_page


LAUNCHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from db.migrate import upgrade
    from korgwatch.scheduling.config import load_schedule
    from korgwatch.scheduling.runner import CrawlRunner

    upgrade(sys.argv[2])  # as the scheduler does when it starts
    CrawlRunner(load_schedule(Path(sys.argv[1])), sys.argv[2]).run("matrixsynth")
    """
)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def write_schedule(tmp_path: Path, site_config: Path) -> Path:
    path = tmp_path / "schedule.yaml"
    data = {
        "sources_file": str(site_config),
        "defaults": {"time_limit": "5m", "stop_grace": "5s"},
        "sources": {"matrixsynth": {"enabled": True, "interval": "1h"}},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_killed_scheduler_takes_its_crawl_along_and_the_lease_and_folder_are_settled(
    tmp_path: Path, held_site: tuple[LoopbackSite, HeldPage], sqlite_url: str
) -> None:
    site, held = held_site
    schedule = write_schedule(tmp_path, write_sources(tmp_path / "sources.yaml", site))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "KORGWATCH_DATA_DIR": str(tmp_path / "data")}
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(schedule), sqlite_url], cwd=REPO_ROOT, env=env)
    try:
        wait_for(lambda: children(launcher.pid), "the crawl process")
        (crawl,) = children(launcher.pid)
        wait_for(held.reached.is_set, "the crawl to ask for page 2")
        (work,) = temp.glob("korgwatch-crawl-matrixsynth-*")
        assert f":{launcher.pid}:" in (work / OWNER_FILE).read_text()
    finally:
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(30)
    wait_for(lambda: not alive(crawl), "the crawl to die with the scheduler")
    assert runs(sqlite_url)[0][1] is None  # killed with it: its run is still open, to be closed `interrupted`

    assert clean_stale_work_dirs(temp) == [work]  # what the next start of the scheduler does first
    assert not work.exists()

    engine = make_engine(sqlite_url)
    try:
        with read_scope(engine) as session:
            assert running_local_run(session, "matrixsynth") is None  # no live holder: the lease is free
    finally:
        engine.dispose()


def test_after_a_restart_the_scheduler_does_not_start_a_second_crawl_beside_a_running_one(
    tmp_path: Path, held_site: tuple[LoopbackSite, HeldPage], sqlite_url: str
) -> None:
    site, held = held_site
    config = write_sources(tmp_path / "sources.yaml", site)
    orphan = start_crawl(tmp_path, config, sqlite_url, "orphan")  # a crawl no scheduler of ours knows about
    try:
        wait_for(held.reached.is_set, "the orphan crawl to ask for page 2")
        runner = CrawlRunner(load_schedule(write_schedule(tmp_path, config)), sqlite_url)
        try:
            assert runner.run("matrixsynth") is None
            assert runner.launches == []  # refused before any process was started
        finally:
            runner.close()
    finally:
        held.release.set()
        orphan.wait(60)
    assert [outcome for _, outcome, _, _ in runs(sqlite_url)] == ["ok"]


def test_the_lease_holds_on_postgresql_while_its_holder_lives_and_passes_on_when_it_dies(postgres_url: str) -> None:
    """Taking the lease locks the source's row (SELECT … FOR UPDATE), so two openings cannot both succeed."""
    from datetime import UTC, datetime

    from db.migrate import upgrade
    from db.run_ledger import SourceBusy, process_owner

    upgrade(postgres_url)
    first_engine, second_engine = make_engine(postgres_url), make_engine(postgres_url)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with session_scope(first_engine) as first:
            begin_local_run(first, "matrixsynth", datetime.now(UTC), full=False, owner=process_owner(sleeper.pid))
        with pytest.raises(SourceBusy), session_scope(second_engine) as second:
            begin_local_run(second, "matrixsynth", datetime.now(UTC), full=False)
    finally:
        sleeper.kill()
        sleeper.wait()
        first_engine.dispose()
        second_engine.dispose()
    engine = make_engine(postgres_url)
    try:
        with session_scope(engine) as session:  # its holder gone, the lease passes on and the old run closes
            local = begin_local_run(session, "matrixsynth", datetime.now(UTC), full=False)
        assert len(local.interrupted) == 1 and local.full
    finally:
        engine.dispose()


def test_a_crawl_killed_at_the_time_limit_is_closed_incomplete_and_the_next_crawl_recovers_it(
    tmp_path: Path, held_site: tuple[LoopbackSite, HeldPage], sqlite_url: str
) -> None:
    from test_crawl_support import run_crawl

    from db.migrate import upgrade

    site, held = held_site
    config = write_sources(tmp_path / "sources.yaml", site)
    schedule = write_schedule(tmp_path, config)
    data = yaml.safe_load(schedule.read_text(encoding="utf-8"))
    data["defaults"]["time_limit"] = "8s"  # the crawl waits on the held page until the limit kills it
    schedule.write_text(yaml.safe_dump(data), encoding="utf-8")
    upgrade(sqlite_url)
    runner = CrawlRunner(load_schedule(schedule), sqlite_url)
    try:
        result = runner.run("matrixsynth")
    finally:
        runner.close()
    assert result is not None and (result.outcome, result.recorded_by) == ("timed_out", "scheduler")
    assert [row[1:] for row in runs(sqlite_url)] == [("timed_out", False, True)]  # its own row, closed, incomplete

    held.release.set()
    again = run_crawl(tmp_path, ["matrixsynth"], config, sqlite_url, "--impolite", name="again")
    assert again.returncode == 0, again.stderr[-3000:]
    assert [row[1:] for row in runs(sqlite_url)][-1] == ("ok", True, False)  # paged in full to recover
    assert again.runs["matrixsynth"]["pages"] == 2
