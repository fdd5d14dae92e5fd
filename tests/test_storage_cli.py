"""The storage commands via Typer's CliRunner on a real SQLite file (and PostgreSQL for a smoke test)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from korgwatch.commands import database, reports, storage

SMALL = Path(__file__).parent / "fixtures" / "storage" / "register_small.csv"


@pytest.fixture
def app() -> typer.Typer:
    main = typer.Typer()
    for commands in (storage, reports, database):
        commands.register(main)
    return main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _jsonl(path: Path, *records: dict | str) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8"
    )
    return path


LISTINGS = [
    {
        "source": "matrixsynth",
        "url": "https://ms/1",
        "external_id": "1",
        "title": "Korg MS-10 s/n 135041",
        "seller": "mark",
        "posted_at": "2026-01-10T09:00:00Z",
    },
    {
        "source": "reverb",
        "url": "https://rv/2",
        "external_id": "2",
        "title": "Korg MS-10",
        "body": "SN 135041",
        "seller": "shop",
        "posted_at": "2026-06-02T09:00:00Z",
        "price": "850.00",
        "currency": "USD",
    },
    {
        "source": "reverb",
        "url": "https://rv/3",
        "external_id": "3",
        "title": "Korg MS-20",
        "body": "serial 152817",
        "posted_at": "2026-06-03T09:00:00Z",
    },
]


def test_ingest_history_export_queue(
    app: typer.Typer, runner: CliRunner, sqlite_url: str, tmp_path: Path
) -> None:
    db = ["--db", sqlite_url]
    path = _jsonl(tmp_path / "l.jsonl", *LISTINGS, "{broken")
    result = runner.invoke(app, ["ingest", str(path), *db, "--format", "json"])
    assert result.exit_code == 1  # a bad line is an error, the good lines still land
    assert f"{path}: line 4: not JSON" in result.stderr
    (summary,) = json.loads(result.stdout)
    assert (summary["listings_new"], summary["instruments_new"], summary["duplicate_sales"]) == (3, 2, 1)

    result = runner.invoke(app, ["history", "135041", *db, "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [(r["source"], r["kind"]) for r in json.loads(result.stdout)] == [
        ("matrixsynth", "new"),
        ("reverb", "duplicate_sale"),
    ]

    result = runner.invoke(app, ["export", "--since", "2026-01-01", *db])
    assert result.stdout == "### MS-10\n\n- [135041](https://ms/1) — first seen 2026-01-10 (matrixsynth)\n"

    result = runner.invoke(app, ["queue", *db, "-f", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["code"], r["serial"]) for r in rows] == [("serial_outside_blocks", "152817")]
    flag_id = rows[0]["flag_id"]

    result = runner.invoke(
        app, ["review", "correct", flag_id, "-r", "alice", "--serial", "999999", "--reason", "x", *db]
    )
    assert result.exit_code == 1 and "fits no block" in result.stderr
    result = runner.invoke(
        app, ["review", "correct", flag_id, "-r", "alice", "--serial", "142817", "--reason", "photo", *db]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", "--since", "2026-01-01", *db, "-f", "json"])
    assert [r["serial"] for r in json.loads(result.stdout)] == ["135041", "142817"]

    result = runner.invoke(app, ["stats", *db])
    assert result.exit_code == 0 and "estimate" in result.stdout and "13nnnn" in result.stdout


def test_register_import_and_db_upgrade(app: typer.Typer, runner: CliRunner, sqlite_url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--db", sqlite_url])
    assert result.exit_code == 0 and "created korgwatch's schema in new file" in result.stdout
    result = runner.invoke(app, ["db", "upgrade", "--db", sqlite_url])
    assert result.exit_code == 0 and "up to date" in result.stdout
    result = runner.invoke(app, ["register", "import", str(SMALL), "--db", sqlite_url, "-f", "json"])
    assert result.exit_code == 1
    assert "line 5: unknown model 'Moog'" in result.stderr
    assert json.loads(result.stdout)[0]["added"] == 3
    result = runner.invoke(app, ["register", "import", str(SMALL), "--db", sqlite_url, "-f", "json"])
    assert json.loads(result.stdout)[0]["added"] == 0


def test_bad_options(app: typer.Typer, runner: CliRunner, sqlite_url: str) -> None:
    result = runner.invoke(app, ["export", "--since", "last week", "--db", sqlite_url])
    assert result.exit_code == 2 and "not a date" in result.stderr
    result = runner.invoke(app, ["review", "confirm", "42", "-r", "alice", "--db", sqlite_url])
    assert result.exit_code == 2 and "no korgwatch store at" in result.stderr  # a decision never creates a store
    assert runner.invoke(app, ["db", "upgrade", "--db", sqlite_url]).exit_code == 0
    result = runner.invoke(app, ["review", "confirm", "42", "-r", "alice", "--db", sqlite_url])
    assert result.exit_code == 1 and "no flag 42" in result.stderr


def test_stdin_on_postgres(app: typer.Typer, runner: CliRunner, postgres_url: str) -> None:
    stdin = "".join(json.dumps(r) + "\n" for r in LISTINGS)
    result = runner.invoke(app, ["ingest", "-", "--db", postgres_url, "-f", "json"], input=stdin)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["listings_new"] == 3
    result = runner.invoke(app, ["history", "135041", "--model", "MS-10", "--db", postgres_url, "-f", "csv"])
    assert result.stdout.splitlines()[0].startswith("seen_at,model,serial,unit,kind")
    assert len(result.stdout.splitlines()) == 3


def test_review_unit_and_history(app: typer.Typer, runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    db = ["--db", db_url]
    listings = [
        {**LISTINGS[0], "external_id": str(n), "url": f"https://ms/{n}", "seller": f"s{n}", "posted_at": when}
        for n, when in ((1, "2026-01-10T09:00:00Z"), (2, "2026-05-10T09:00:00Z"), (3, "2026-09-10T09:00:00Z"))
    ]
    assert runner.invoke(app, ["ingest", str(_jsonl(tmp_path / "l.jsonl", *listings)), *db]).exit_code == 0

    def units() -> list[tuple[int, str, str]]:
        result = runner.invoke(app, ["history", "135041", *db, "-f", "json"])
        assert result.exit_code == 0, result.output
        return [(r["unit"], r["kind"], r["url"]) for r in json.loads(result.stdout)]

    assert units() == [
        (1, "new", "https://ms/1"),
        (1, "duplicate_sale", "https://ms/2"),
        (1, "duplicate_sale", "https://ms/3"),
    ]
    result = runner.invoke(app, ["history", "135041", *db, "-f", "json"])
    second, third = (r["appearance_id"] for r in json.loads(result.stdout)[1:])

    result = runner.invoke(
        app, ["review", "unit", str(second), "-r", "alice", "--also", str(third), "--note", "scuffed", *db]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"appearance {second} is now the first sighting of MS-10 135041 unit 2"
    assert units() == [(1, "new", "https://ms/1"), (2, "new", "https://ms/2"), (2, "duplicate_sale", "https://ms/3")]

    result = runner.invoke(app, ["history", "135041", *db])
    assert result.exit_code == 0 and "unit" in result.stdout
    result = runner.invoke(app, ["review", "unit", "999", "-r", "alice", *db])
    assert result.exit_code == 1 and "no appearance 999" in result.stderr
    # The export lists each unit with its own first listing.
    result = runner.invoke(app, ["export", "--since", "2026-01-01", *db, "-f", "json"])
    assert [(r["serial"], r["url"]) for r in json.loads(result.stdout)] == [
        ("135041", "https://ms/1"),
        ("135041", "https://ms/2"),
    ]
