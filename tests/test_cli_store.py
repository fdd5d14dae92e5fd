"""Which store a command line uses and how it opens it (issue 13 items 6, 7, 8), through the real CLI.

Real SQLite files and, when configured, a fresh PostgreSQL database per test (conftest's `postgres_url`).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from db.engine import database_url
from db.migrate import alembic_config, head_revision, upgrade
from korgwatch.cli import app
from korgwatch.store import resolve_store

runner = CliRunner()
LISTING = {"source": "reverb", "url": "https://rv/1", "external_id": "1", "title": "Korg MS-20 s/n 152817"}
READ_COMMANDS = [
    ["queue"],
    ["history", "152817"],
    ["export", "--since", "2026-01-01"],
    ["stats"],
    ["runs"],
    ["status"],
]


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200", **(env or {})})


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def ingest_one(db: str, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(LISTING) + "\n", encoding="utf-8")
    result = invoke("ingest", str(path), "--db", db, "-f", "json")
    assert result.exit_code == 0, result.output


# --- 13.6: --db as a path; bad URLs in one line ---------------------------------------------------------


def test_db_accepts_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ingest_one("stores/k.sqlite", tmp_path)  # a writing command creates the file, and its folder
    assert (tmp_path / "stores" / "k.sqlite").is_file()
    result = invoke("queue", "--db", "stores/k.sqlite", "-f", "json")
    assert result.exit_code == 0, result.output
    assert [row["serial"] for row in json.loads(result.stdout)] == ["152817"]
    assert database_url("stores/k.sqlite") == f"sqlite:///{tmp_path / 'stores' / 'k.sqlite'}"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://kw:secret@host:notaport/db", "is not a valid database URL"),
        ("mysql+pymysql://kw:secret@host/db", "'pymysql' driver is not installed"),
        ("nosuchdb://host/db", "unknown database backend 'nosuchdb'"),
    ],
)
@pytest.mark.parametrize("command", [["queue"], ["ingest", "-"], ["db", "upgrade"]])
def test_bad_db_url_is_one_line_and_exit_2(url: str, says: str, command: list[str]) -> None:
    result = invoke(*command, "--db", url, input="")
    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    assert says in line and "secret" not in line


def test_bad_korgwatch_db_is_named() -> None:
    result = invoke("stats", env={"KORGWATCH_DB": "nosuchdb://x/y"})
    assert result.exit_code == 2 and one_line(result.stderr).startswith("store: KORGWATCH_DB: ")


# --- 13.7: read commands never create -------------------------------------------------------------------


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_read_command_on_a_missing_file_creates_nothing(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "relative.sqlite"
    result = invoke(*command, "--db", f"sqlite:///{missing}")
    assert result.exit_code == 2, result.output
    assert "no korgwatch store at" in one_line(result.stderr)
    assert not missing.exists()


def test_serve_on_a_missing_store_refuses_before_listening(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    result = invoke("serve", "--db", str(missing), "--port", "0")
    assert result.exit_code == 2 and "no korgwatch store at" in one_line(result.stderr)
    assert not missing.exists()


def _other_application(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
            connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()


def test_a_database_of_another_application(db_url: str, tmp_path: Path) -> None:
    """Reads refuse, writes refuse with a hint, `db upgrade` names the tables and adds ours beside them."""
    _other_application(db_url)
    result = invoke("queue", "--db", db_url)
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "2 table(s) that are not korgwatch's (customers, invoices)" in line and "db upgrade" in line
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(LISTING) + "\n", encoding="utf-8")
    result = invoke("ingest", str(path), "--db", db_url)
    assert result.exit_code == 2
    assert "run `korgwatch db upgrade --db" in one_line(result.stderr)
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text("sources:\n  reverb: {enabled: true, interval: 6h}\n", encoding="utf-8")
    result = invoke("schedule", "list", "--db", db_url, "--config", str(schedule))  # the job store writes too
    assert result.exit_code == 2 and "run `korgwatch db upgrade --db" in one_line(result.stderr)
    assert tables(db_url) == {"customers", "invoices"}  # nothing added by the refused commands

    result = invoke("db", "upgrade", "--db", db_url)
    assert result.exit_code == 0, result.output
    said = result.stdout.splitlines()
    assert "(customers, invoices): adding korgwatch's tables beside them" in said[0]
    assert said[1].startswith("created korgwatch's schema in") and f"revision {head_revision()}" in said[1]
    assert {"customers", "invoices", "listings", "flags"} <= tables(db_url)
    ingest_one(db_url, tmp_path)
    assert invoke("queue", "--db", db_url).exit_code == 0


def test_read_commands_on_an_empty_database_create_nothing(postgres_url: str) -> None:
    for command in READ_COMMANDS:
        result = invoke(*command, "--db", postgres_url)
        assert result.exit_code == 2, (command, result.output)
        assert "has no korgwatch data yet" in one_line(result.stderr)
    assert tables(postgres_url) == set()


def test_another_applications_alembic_is_refused(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('abc123')"))
    engine.dispose()
    for command in (["queue"], ["db", "upgrade"]):
        result = invoke(*command, "--db", sqlite_url)
        assert result.exit_code == 2 and "'abc123', which this korgwatch does not know" in one_line(result.stderr)


def test_db_upgrade_says_what_it_did(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    result = invoke("db", "upgrade", "--db", str(path))
    assert result.exit_code == 0
    assert result.stdout.startswith(f"created korgwatch's schema in new file {path}: ")
    assert "listings" in result.stdout and f"revision {head_revision()}" in result.stdout
    result = invoke("db", "upgrade", "--db", str(path))
    assert "is up to date" in result.stdout and "created" not in result.stdout


# --- 13.8: one store per command line ------------------------------------------------------------------


def _schedule(tmp_path: Path, db: str | None) -> Path:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "schedule.yaml").write_text(
        (f"db: '{db}'\n" if db else "") + "sources:\n  reverb: {enabled: true, interval: 6h}\n", encoding="utf-8"
    )
    return config


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = resolve_store()  # the shipped schedule.yaml names the sample sites' store explicitly
    assert shipped.url.endswith("/sample/korgwatch-sample.sqlite") and shipped.origin.startswith("db: in ")
    config = _schedule(tmp_path, None)
    monkeypatch.setenv("KORGWATCH_CONFIG", str(config))
    assert resolve_store().origin == "default" and resolve_store().url.endswith("/korgwatch.sqlite")
    data = Path(str(resolve_store().url).removeprefix("sqlite:///")).parent
    _schedule(tmp_path, "{data_dir}/sample/s.sqlite")
    store = resolve_store()
    assert (store.url, store.origin) == (f"sqlite:///{data / 'sample' / 's.sqlite'}", f"db: in {config}/schedule.yaml")
    _schedule(tmp_path, "local.sqlite")  # a path in the file is relative to the file
    assert resolve_store().url == f"sqlite:///{config / 'local.sqlite'}"
    monkeypatch.setenv("KORGWATCH_DB", str(tmp_path / "env.sqlite"))
    assert (resolve_store().url, resolve_store().origin) == (f"sqlite:///{tmp_path / 'env.sqlite'}", "KORGWATCH_DB")
    assert resolve_store("x.sqlite").origin == "--db"


def test_every_command_uses_and_names_the_same_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ingest, queue, stats, runs and status all read the store KORGWATCH_DB names, even in sample mode."""
    config = _schedule(tmp_path, "{data_dir}/sample/korgwatch-sample.sqlite")
    (config / "schedule.yaml").write_text(
        "sample_sites: true\n" + (config / "schedule.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.setenv("KORGWATCH_CONFIG", str(config))
    for name in ("models.yaml", "register"):
        (config / name).symlink_to(Path(__file__).resolve().parent.parent / "config" / name)
    env_store = tmp_path / "env.sqlite"
    monkeypatch.setenv("KORGWATCH_DB", str(env_store))
    ingest_one(str(env_store), tmp_path)
    for command in (["queue"], ["stats"], ["runs"], ["status"]):
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        assert f"{env_store} (KORGWATCH_DB)" in result.stdout.replace("\n", ""), (command, result.stdout)
    monkeypatch.delenv("KORGWATCH_DB")
    result = invoke("queue")  # now the schedule file's store, named as such, and it has nothing yet
    assert result.exit_code == 2 and "korgwatch-sample.sqlite" in one_line(result.stderr)
    assert invoke("db", "upgrade").stdout.startswith("created korgwatch's schema in new file ")
    result = invoke("status")
    assert result.exit_code == 0 and f"db: in {config}/schedule.yaml" in result.stdout.replace("\n", "")


def test_an_older_korgwatch_schema_is_upgraded_only_by_writers(db_url: str, tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    previous = script.get_revision(head_revision()).down_revision
    upgrade(db_url, str(previous))
    result = invoke("queue", "--db", db_url)
    assert result.exit_code == 2
    assert f"is at revision {previous}, this korgwatch needs {head_revision()}: run `korgwatch db upgrade" in (
        one_line(result.stderr)
    )
    result = invoke("db", "upgrade", "--db", db_url)
    assert result.exit_code == 0 and f"from schema revision {previous} to {head_revision()}" in result.stdout
    assert invoke("queue", "--db", db_url).exit_code == 0


def test_the_owner_of_other_tables_is_named_when_a_marker_shows_it(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE django_migrations (id INTEGER PRIMARY KEY)"))
        connection.execute(text("CREATE TABLE auth_user (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    result = invoke("db", "upgrade", "--db", sqlite_url)
    assert result.exit_code == 0
    assert "2 table(s) that are not korgwatch's, apparently a Django application's (auth_user, django_migrations)" in (
        result.stdout.splitlines()[0]
    )


def test_a_postgres_database_that_does_not_exist(postgres_server_url: str) -> None:
    from sqlalchemy.engine import make_url

    missing = make_url(postgres_server_url).set(database=f"kw_missing_{uuid.uuid4().hex[:12]}")
    url = missing.render_as_string(hide_password=False)
    for command in (["queue"], ["ingest", "-"]):
        result = invoke(*command, "--db", url, input="")
        assert result.exit_code == 2
        line = one_line(result.stderr)
        assert line.startswith("store: cannot open ") and "does not exist" in line
