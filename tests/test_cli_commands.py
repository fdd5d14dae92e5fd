"""The command line a new user meets (issue 13 items 12-15): help, formats, filters, one-line errors, the estimate.

Through the real `korgwatch` app and Typer's runner on real SQLite files (PostgreSQL where a test says so).
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import math
import socket
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.models import ReviewLog
from korgwatch.cli import app
from pipeline.rules import Rules
from review.app import ReviewConfig, create_app

runner = CliRunner()

MS20_OUTSIDE = {"source": "reverb", "url": "https://rv/1", "external_id": "1", "title": "Korg MS-20 s/n 152817"}
# A Poly-61 whose serial would fit an MS-20: its flag names MS-20 among the models the serial fits instead.
POLY61_LOOKS_MS20 = {"source": "reverb", "url": "https://rv/2", "external_id": "2", "title": "Korg Poly-61 s/n 142817"}
POLYSIX = {"source": "reverb", "url": "https://rv/3", "external_id": "3", "title": "Korg Polysix s/n 206733"}


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store holding three flagged listings: an MS-20, a Poly-61 whose serial fits MS-20, a Polysix."""
    path = tmp_path / "listings.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (MS20_OUTSIDE, POLY61_LOOKS_MS20, POLYSIX)), "utf-8")
    db = str(tmp_path / "k.sqlite")
    result = invoke("ingest", str(path), "--db", db, "-f", "json")
    assert result.exit_code == 0, result.output
    return db


def queue_rows(*args: str) -> list[dict[str, str]]:
    result = invoke("queue", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- 13.12: version, -h, formats, no <bool>, one reviewer default ----------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"korgwatch {version('korgwatch')}"


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(command, "commands"):  # a group (Typer carries its own Click: no isinstance on click.Group)
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_every_command_takes_h_and_shows_no_bool_placeholder() -> None:
    paths = list(_commands(typer.main.get_command(app)))
    assert ("review", "confirm") in paths and ("schedule", "list") in paths
    for path in paths:
        result = invoke(*path, "-h")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: korgwatch" in result.stdout, path
        assert "<bool>" not in result.stdout, path


@pytest.mark.parametrize("command", [["runs"], ["status"], ["schedule", "list"]], ids=" ".join)
def test_scheduling_listings_take_f_csv(command: list[str], store: str, tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text("sources:\n  reverb: {enabled: true, interval: 6h}\n", encoding="utf-8")
    result = invoke(*command, "--db", store, "--config", str(schedule), "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    header = result.stdout.splitlines()[0].split(",")
    assert "source" in header
    if command != ["runs"]:  # no crawl has run yet; the schedule and the status know the source
        assert [row["source"] for row in rows] == ["reverb"]
    result = invoke(*command, "--db", store, "--config", str(schedule), "-f", "json")
    assert result.exit_code == 0 and isinstance(json.loads(result.stdout), list)


def test_dead_letter_list_takes_f(tmp_path: Path) -> None:
    result = invoke("dead-letter", "list", "--dir", str(tmp_path), "-f", "csv")
    assert result.exit_code == 0 and result.stdout == "file,listings,last_error\n"
    result = invoke("dead-letter", "list", "--dir", str(tmp_path))
    assert result.stdout.startswith("Dead letters: nothing found in ")


def test_review_commands_default_to_the_login_name(store: str) -> None:
    (flag,) = [row for row in queue_rows("--db", store) if row["serial"] == "152817"]
    result = invoke("review", "confirm", str(flag["flag_id"]), "--db", store)
    assert result.exit_code == 0, result.output
    result = invoke("review", "note", str(flag["flag_id"]), "seen it", "-r", "alice", "--db", store)
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{store}")
    try:
        with session_scope(engine) as session:
            reviewers = session.scalars(select(ReviewLog.reviewer).order_by(ReviewLog.id)).all()
    finally:
        engine.dispose()
    assert reviewers == [getpass.getuser(), "alice"]


# --- 13.13: filters --------------------------------------------------------------------------------------


def test_queue_model_takes_aliases_and_only_the_flags_own_model(store: str) -> None:
    by_canonical = queue_rows("--db", store, "--model", "MS-20")
    assert [(row["model"], row["serial"]) for row in by_canonical] == [("MS-20", "152817")]  # not the Poly-61
    for alias in ("ms20", "ms 20", "Ms-20"):
        assert queue_rows("--db", store, "--model", alias) == by_canonical
    assert [row["serial"] for row in queue_rows("--db", store, "--model", "poly61")] == ["142817"]
    assert [row["serial"] for row in queue_rows("--db", store, "--code", "SERIAL_OUTSIDE_BLOCKS")] == [
        "206733",
        "142817",
        "152817",
    ]


def test_history_model_takes_aliases(store: str) -> None:
    result = invoke("history", "206733", "--model", "polysix", "--db", store, "-f", "json")
    assert result.exit_code == 0 and [row["model"] for row in json.loads(result.stdout)] == ["PolySix"]


@pytest.mark.parametrize(
    ("args", "says", "lists"),
    [
        (["queue", "--model", "MS-2O"], "--model: unknown model 'MS-2O'", "MS-20"),
        (["history", "1", "--model", "minimoog"], "--model: unknown model 'minimoog'", "PolySix"),
        (["queue", "--code", "outside"], "--code: unknown flag code 'outside'", "serial_outside_blocks"),
    ],
)
def test_unknown_filter_values_are_refused_with_the_valid_ones(
    args: list[str], says: str, lists: str, store: str
) -> None:
    result = invoke(*args, "--db", store)
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert says in line and lists in line


# --- 13.14: one-line errors --------------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_port_in_use_is_one_line_and_no_url(store: str, taken_port: int) -> None:
    result = invoke("serve", "--db", store, "--port", str(taken_port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{taken_port}: the port is already in use" in one_line(result.stderr)
    assert "http://" not in result.output


def test_sample_site_on_a_port_in_use_is_one_line(taken_port: int) -> None:
    result = invoke("sample-site", "--port", str(taken_port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{taken_port}: the port is already in use" in one_line(result.stderr)


def test_register_import_of_a_directory(tmp_path: Path) -> None:
    result = invoke("register", "import", str(tmp_path), "--db", str(tmp_path / "k.sqlite"))
    assert result.exit_code == 2 and f"{tmp_path}: is a directory" in one_line(result.stderr)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"title": "Korg MS-20 s/n 14', "the line ends at column 28 before the record does: cut short?"),
        ('{"title": "Korg MS-20", "body": tru}', "Expecting value at column 33"),
        ('{"title": "Korg MS-20" "body": "x"}', "Expecting ',' delimiter at column 24"),
    ],
)
def test_a_bad_json_line_is_reported_at_its_real_position(line: str, says: str) -> None:
    result = invoke("analyze", input='{"title": "Korg MS-10"}\n' + line + "\n")
    assert result.exit_code != 0
    assert f"line 2: not JSON ({says})" in result.stderr
    assert "at at" not in result.stderr
    assert "MS-10" in result.stdout  # the good line is still written


def test_schedule_run_now_of_an_unknown_source(store: str, tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text("sources:\n  reverb: {enabled: true, interval: 6h}\n", encoding="utf-8")
    result = invoke("schedule", "run-now", "reverbb", "--db", store, "--config", str(schedule))
    assert result.exit_code == 2
    assert one_line(result.stderr) == f"reverbb: no such source in {schedule} (its sources: reverb)"


def test_export_since_after_until_is_refused(store: str) -> None:
    result = invoke("export", "--since", "2026-06-01", "--until", "2026-01-01", "--db", store)
    assert result.exit_code == 2
    assert "--since 2026-06-01 is after --until 2026-01-01" in one_line(result.stderr)


def test_empty_results_say_nothing_found(store: str) -> None:
    result = invoke("queue", "--db", store, "--source", "ebay")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"review queue: nothing found in {Path(store)} (--db)".replace(
        str(Path(store)), f"sqlite:///{store}"
    )
    result = invoke("history", "999999", "--db", store)
    assert result.stdout.strip().startswith("history of 999999: nothing found in sqlite:///")
    result = invoke("queue", "--db", store, "--source", "ebay", "-f", "json")
    assert result.stdout.strip() == "[]"  # machine formats stay machine-readable


# --- 13.15: the estimate ----------------------------------------------------------------------------------


def _ms10(tmp_path: Path, serials: list[str]) -> str:
    records = [
        {"source": "reverb", "url": f"https://rv/{s}", "external_id": s, "title": f"Korg MS-10 s/n {s}"}
        for s in serials
    ]
    path = tmp_path / "ms10.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    db = str(tmp_path / "stats.sqlite")
    assert invoke("ingest", str(path), "--db", db).exit_code == 0
    return db


def _stats(db: str) -> dict[str, dict]:
    result = invoke("stats", "--db", db, "-f", "json")
    assert result.exit_code == 0, result.output
    return {row["block"]: row for row in json.loads(result.stdout) if row["model"] == "MS-10"}


def test_stats_says_too_few_sightings_below_three_serials(tmp_path: Path) -> None:
    db = _ms10(tmp_path, ["135041", "130007"])
    row = _stats(db)["13nnnn"]
    assert row["production_estimate"] is None and row["estimate_text"] == "too few sightings (2)"
    result = invoke("stats", "--db", db)
    assert "too few sightings" in result.stdout and "13nnnn" in result.stdout


def test_stats_estimate_with_its_interval(tmp_path: Path) -> None:
    db = _ms10(tmp_path, ["135041", "130007", "134458"])
    row = _stats(db)["13nnnn"]
    m, k = 135041 - 130000 + 1, 3  # offsets within 13nnnn count from 130000 = 1
    assert row["production_estimate"] == round(m + m / k - 1)
    assert (row["estimate_low"], row["estimate_high"]) == (m, math.ceil(m * 0.1 ** (-1 / k)))
    assert row["estimate_serials"] == 3
    assert f"90 % interval {m}–{math.ceil(m * 0.1 ** (-1 / k))}, from 3 serials" in row["estimate_text"]


def _model_page(db: str, rules: Rules) -> str:
    client = TestClient(create_app(ReviewConfig(db_url=f"sqlite:///{db}", rules=rules, reviewer="t")))
    page = client.get("/models/MS-10", headers={"Host": "127.0.0.1"})
    assert page.status_code == 200
    return page.text


def test_model_page_shows_the_same_estimate(tmp_path: Path, rules: Rules) -> None:
    db = _ms10(tmp_path, ["135041", "130007", "134458"])
    text = _stats(db)["13nnnn"]["estimate_text"]
    page = _model_page(db, rules)
    assert "Units made (estimate)" in page and text in page
    few = tmp_path / "few"
    few.mkdir()
    assert "too few sightings (1)" in _model_page(_ms10(few, ["135041"]), rules)
