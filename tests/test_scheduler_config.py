"""schedule.yaml loading, cron/duration parsing and the health rules: pure, no scheduler, no processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from korgwatch.scheduling.config import ScheduleError, cron_fields, format_duration, load_schedule, parse_duration
from korgwatch.scheduling.history import RunRow, health
from korgwatch.scheduling.jobs import make_trigger

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_shipped_schedule_loads_and_works_offline() -> None:
    config = load_schedule(REPO_ROOT / "config" / "schedule.yaml")
    assert config.sample_sites  # a new user without internet crawls the bundled site
    assert {j.source for j in config.enabled()} >= {"matrixsynth", "reverb"}
    assert all(j.interval == config.sample_interval and j.jitter == 0 for j in config.enabled())
    for job in config.jobs:
        make_trigger(job)  # every entry, enabled or not, is a valid trigger
        assert job.time_limit > job.stop_grace


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("30m", 1800.0), ("6h", 21600.0), ("1d", 86400.0), ("1h30m", 5400.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["soon", "5 parsecs", "-1", True, "10x"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("weekday", "days"),
    [("1-5", "mon,tue,wed,thu,fri"), ("0", "sun"), ("7", "sun"), ("0,6", "sat,sun"), ("sat-sun", None), ("*/2", None)],
)
def test_cron_weekdays_mean_what_they_mean_in_crontab(weekday: str, days: str | None) -> None:
    fields = cron_fields(f"0 6 * * {weekday}")
    if days is not None:
        assert set(fields["day_of_week"].split(",")) == set(days.split(","))


def test_cron_weekday_range_fires_on_weekdays_only() -> None:
    from korgwatch.scheduling.config import JobConfig

    job = JobConfig("reverb", True, "0 6 * * 1-5", None, 0, "UTC", 60, 5, 60)
    moment = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)  # a Friday, after 06:00
    fire = make_trigger(job).get_next_fire_time(None, moment)
    assert fire is not None and fire.strftime("%a %H:%M") == "Mon 06:00"


def test_problems_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "timezone: Mars/Olympus\n"
        "sources:\n"
        "  reverb:\n"
        "    enabled: true\n"
        "    cron: '0 6 * *'\n"
        "  matrixsynth:\n"
        "    interval: 1h\n"
        "    cron: '0 * * * *'\n"
        "  craigslist:\n"
        "    interval: 1h\n"
        "  jsonld:\n"
        "    intervall: 1h\n",
        encoding="utf-8",
    )
    with pytest.raises(ScheduleError) as caught:
        load_schedule(path)
    problems = "\n".join(caught.value.problems)
    assert f"{path}:1: timezone: unknown time zone 'Mars/Olympus'" in problems
    assert f"{path}:5: source 'reverb': cron:" in problems
    assert f"{path}:8: source 'matrixsynth': give `cron` or `interval`, not both" in problems
    assert f"{path}:9: unknown source 'craigslist'" in problems
    assert f"{path}:12: source 'jsonld': unknown setting 'intervall'" in problems


def test_fingerprint_changes_only_with_the_trigger(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("sources:\n  reverb: {enabled: true, interval: 6h, time_limit: 10m}\n", encoding="utf-8")
    first = load_schedule(path).jobs[0]
    path.write_text("sources:\n  reverb: {enabled: true, interval: 6h, time_limit: 20m}\n", encoding="utf-8")
    assert load_schedule(path).jobs[0].fingerprint() == first.fingerprint()  # limits are read at run time
    path.write_text("sources:\n  reverb: {enabled: true, interval: 5h}\n", encoding="utf-8")
    assert load_schedule(path).jobs[0].fingerprint() != first.fingerprint()


def run(outcome: str, seen: int = 10, age: int = 0) -> RunRow:
    started = datetime(2026, 11, 25, tzinfo=UTC) - timedelta(hours=age)
    return RunRow(age, "reverb", started, started, outcome, 1, 0, 0, seen, 0, 0, None)


def test_health_rules() -> None:
    assert health([]).state == "unknown"
    assert health([run("ok")]).state == "healthy"
    assert health([run("failed"), run("ok")]).state == "warning"
    three = health([run("failed"), run("timed_out", age=1), run("failed", age=2), run("ok", age=3)])
    assert three.state == "unhealthy" and "last 3 runs" in three.reasons[0]
    usual = [run("ok", 40, age=i) for i in range(1, 5)]
    low = health([run("ok", 5), *usual])
    assert low.state == "unhealthy" and "layout changed?" in low.reasons[0] and "usual 40" in low.reasons[0]
    assert health([run("ok", 12), *usual]).state == "healthy"  # 30%: fewer, not far fewer
    assert health([run("ok", 0), *usual[:2]]).state == "healthy"  # too little history to judge
