"""Shared fixtures: the shipped rules, a fresh SQLite file per test, and the real PostgreSQL/Redis when configured."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.rules import Rules, load_rules

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _require(env_name: str, what: str) -> str:
    """The service URL from the environment; a skip with a reason, or a failure when CI is set."""
    url = os.environ.get(env_name)
    if not url:
        message = f"{what} not configured: set {env_name}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (required when CI is set)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def rules() -> Rules:
    """The rules shipped in config/, loaded once."""
    return load_rules(REPO_ROOT / "config")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'korgwatch.sqlite'}"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return _require("KORGWATCH_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_server_url)
    name = f"kw_test_{uuid.uuid4().hex[:12]}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test on the embedded SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _require("KORGWATCH_TEST_REDIS_URL", "Redis")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the user's real data directory or database."""
    monkeypatch.setenv("KORGWATCH_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    monkeypatch.delenv("KORGWATCH_DB", raising=False)


@pytest.fixture
def services() -> Iterator[list[Any]]:
    """Scheduler services (korgwatch.scheduling.service) started by a test; stopped at its end even when it fails."""
    started: list[Any] = []
    yield started
    for service in started:
        if service.scheduler is not None and service.scheduler.running:
            service.stop(force=True)
