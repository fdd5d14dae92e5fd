"""A run's digest by e-mail: Apprise's mailto:// target to a real SMTP server on loopback (aiosmtpd), with the
password from the environment; the mail received is parsed and checked."""

from __future__ import annotations

import email
import socket
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from db.models import CrawlRun
from db.run_ledger import close_runs, open_run
from korgwatch.notify.config import load_notify
from korgwatch.notify.events import collect
from korgwatch.notify.sender import notify_once
from pipeline.rules import Rules

aiosmtpd = pytest.importorskip("aiosmtpd.controller")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[Message] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
            return AuthResult(success=data.password == b"mail-s3cret")
        return AuthResult(success=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_digest_is_mailed_over_smtp_with_the_password_from_the_environment(
    sqlite_url: str, rules: Rules, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Mailbox()
    port = free_port()
    server = aiosmtpd.Controller(
        box, hostname="127.0.0.1", port=port, authenticator=box.authenticate, auth_require_tls=False
    )
    server.start()
    try:
        monkeypatch.setenv("SMTP_PASSWORD", "mail-s3cret")
        path = tmp_path / "notify.yaml"
        path.write_text(
            "targets:\n  - name: mail\n"
            f'    url: "mailto://keeper:${{SMTP_PASSWORD}}@127.0.0.1:{port}'
            '?from=korgwatch@example.org&to=keeper@example.org&mode=insecure"\n',
            encoding="utf-8",
        )
        config = load_notify(path)
        engine = make_engine(sqlite_url)
        upgrade_engine(engine)
        try:
            with session_scope(engine) as session:
                collect(session, config)
                run_id = open_run(session, "reverb", datetime.now(UTC) - timedelta(seconds=1))
            records = [
                {"source": "reverb", "url": f"https://reverb.example/{n}", "title": f"Korg MS-20 {serial}"}
                for n, serial in enumerate(("144571", "145210"))
            ]
            with session_scope(engine) as session:
                assert ingest_records(session, records, rules).errors == []
                session.get(CrawlRun, run_id).pages = 1  # type: ignore[union-attr]
                close_runs(session, [run_id], datetime.now(UTC) + timedelta(seconds=1))
            _, report = notify_once(engine, config)
            assert report.errors == [] and report.delivered == 1
        finally:
            engine.dispose()
    finally:
        server.stop()
    assert box.logins == [(b"keeper", b"mail-s3cret")]
    assert len(box.mails) == 1
    mail = box.mails[0]
    assert mail["To"] == "keeper@example.org"
    assert f"reverb run {run_id}" in str(mail["Subject"])
    text = next(part for part in mail.walk() if part.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode()
    assert "MS-20 144571" in body and "MS-20 145210" in body
