"""Review authentication on the network (issue 17 item 9): a strong password, guesses slowed down then locked
out per client, user names cleaned and capped for the log (no HTTP 500 on PostgreSQL), and error responses
with the same security headers as every other page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from starlette.testclient import TestClient
from typer import Typer
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade, upgrade_engine
from db.models import Flag, ReviewLog
from korgwatch.commands import serve as serve_command
from pipeline.rules import Rules
from review.app import SECURITY_HEADERS, ReviewConfig, create_app
from review.auth import MAX_USER_LENGTH, AuthThrottle, clean_user

TOKEN = "k7Qm2xVr9pLw4ZtN8bYc"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(db_url: str, rules: Rules) -> Iterator[Engine]:
    """A database on each backend with one open flag."""
    eng = make_engine(db_url)
    upgrade_engine(eng)
    with session_scope(eng) as session:
        record = {"source": "reverb", "url": "https://reverb.com/item/1", "external_id": "1"}
        ingest_records(session, [{**record, "title": "Korg MS-20 SN 730144"}], rules)
    yield eng
    eng.dispose()


def _client(engine: Engine, rules: Rules, throttle: AuthThrottle | None = None, **kw: Any) -> TestClient:
    config = ReviewConfig(
        engine.url.render_as_string(hide_password=False),
        rules,
        token=TOKEN,
        throttle=throttle or AuthThrottle(delay=0.0),
    )
    return TestClient(create_app(config, engine=engine), **kw)


def _assert_security_headers(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name)


# --- the password ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> tuple[Typer, list[dict[str, Any]]]:
    """`serve` with the server itself replaced by a note of the socket it bound; its store made beforehand
    (serve reads an existing store only)."""
    upgrade(sqlite_url)
    app = Typer()
    serve_command.register(app)
    app.command("noop")(lambda: None)
    ran: list[dict[str, Any]] = []
    record = lambda app, sock: ran.append(dict(zip(("host", "port"), sock.getsockname(), strict=True)))  # noqa: E731
    monkeypatch.setattr(serve_command, "run_server", record)
    return app, ran


@pytest.mark.parametrize("weak", ["x", "s3cret", "aaaaaaaaaaaaaaaaaaaaaaaa"])
def test_a_weak_password_is_refused_for_a_network_bind(
    cli: tuple[Typer, list[dict[str, Any]]], sqlite_url: str, monkeypatch: pytest.MonkeyPatch, weak: str
) -> None:
    app, ran = cli
    monkeypatch.setenv("KORGWATCH_REVIEW_TOKEN", weak)
    result = CliRunner().invoke(app, ["serve", "--db", sqlite_url, "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and ran == []
    assert result.output.startswith("refusing to serve on 0.0.0.0: the review password")
    assert "KORGWATCH_REVIEW_TOKEN=" in result.output and len(result.output.strip().splitlines()) == 1
    # on loopback the password only adds to the Host check: any will do
    assert CliRunner().invoke(app, ["serve", "--db", sqlite_url, "--port", "0"]).exit_code == 0 and len(ran) == 1


def test_a_strong_password_serves_the_network(
    cli: tuple[Typer, list[dict[str, Any]]], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, ran = cli
    monkeypatch.setenv("KORGWATCH_REVIEW_TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["serve", "--db", sqlite_url, "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert ran[0]["host"] == "0.0.0.0"


# --- guessing -------------------------------------------------------------------------------------------


def test_the_throttle_slows_down_then_locks_out() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(free=3, delay=0.5, max_delay=4.0, lock_after=8, lockout=600.0, clock=clock)
    waits = [throttle.failed("10.0.0.9") for _ in range(7)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 4.0]  # free, then doubling, capped
    assert throttle.locked_for("10.0.0.9") == 0.0
    throttle.failed("10.0.0.9")
    assert throttle.locked_for("10.0.0.9") == 600.0
    assert throttle.locked_for("10.0.0.10") == 0.0  # per client
    clock.now += 601
    assert throttle.locked_for("10.0.0.9") == 0.0
    throttle.succeeded("10.0.0.9")
    assert throttle.failed("10.0.0.9") == 0.0  # a success starts the count again


def test_repeated_failures_lock_the_client_out(engine: Engine, rules: Rules) -> None:
    throttle = AuthThrottle(free=2, delay=0.0, lock_after=5)
    guesser = _client(engine, rules, throttle, client=("203.0.113.7", 40000))
    for n in range(4):
        assert guesser.get("/", auth=("alice", f"guess-{n}")).status_code == 401
    assert guesser.get("/", auth=("alice", TOKEN)).status_code == 200  # not yet locked: a success clears
    for n in range(5):
        assert guesser.get("/", auth=("alice", f"guess-{n}")).status_code == 401
    locked = guesser.get("/", auth=("alice", TOKEN))  # even the right password, for a while
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "too many failed sign-ins" in locked.text
    _assert_security_headers(locked)
    other = _client(engine, rules, throttle, client=("198.51.100.2", 40000))
    assert other.get("/", auth=("bob", TOKEN)).status_code == 200  # another client is not locked out


# --- the user name --------------------------------------------------------------------------------------


def test_clean_user() -> None:
    assert clean_user("alice\nconfirm flag 9 by mallory") == "alice confirm flag 9 by mallory"
    assert clean_user("  bob\t\r\x00 ") == "bob"
    assert clean_user("\n\n") == "reviewer"
    assert clean_user("é" * 500) == "é" * MAX_USER_LENGTH


def test_user_names_are_cleaned_and_capped_in_the_log(engine: Engine, rules: Rules) -> None:
    """A name over 128 characters gave an HTTP 500 on PostgreSQL; a newline forged a line in the log."""
    client = _client(engine, rules)
    client.auth = ("x" * 300 + "\nforged", TOKEN)
    page = client.get("/")
    assert page.status_code == 200
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    with session_scope(engine) as session:
        flag_id = session.scalar(select(Flag.id))
    response = client.post(f"/flags/{flag_id}/confirm", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 303
    with session_scope(engine) as session:
        (entry,) = session.scalars(select(ReviewLog)).all()
        assert entry.reviewer == "x" * MAX_USER_LENGTH


# --- error responses ------------------------------------------------------------------------------------


def test_error_responses_carry_the_security_headers(engine: Engine, rules: Rules) -> None:
    client = _client(engine, rules, raise_server_exceptions=False)
    _assert_security_headers(client.get("/"))  # 401
    client.auth = ("alice", TOKEN)
    _assert_security_headers(client.get("/listing/999"))  # 404
    _assert_security_headers(client.post("/flags/1/confirm"))  # 403, no CSRF token
    with engine.begin() as conn:  # a broken store: the page fails with 500
        conn.execute(text("ALTER TABLE flags RENAME TO flags_gone"))
    failed = client.get("/")
    assert failed.status_code == 500 and failed.text == "internal error"
    _assert_security_headers(failed)
