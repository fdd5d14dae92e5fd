"""`korgwatch ingest` as a user runs it, through the installed command in a real subprocess: the shipped
example, bad bytes on stdin, --source and --skip, the help, progress only on a terminal, and Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from db.engine import make_engine, session_scope
from db.models import Listing, Source

REPO = Path(__file__).resolve().parent.parent
KORGWATCH = [sys.executable, "-m", "korgwatch.cli"]


def _run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*KORGWATCH, *args], input=stdin, capture_output=True, cwd=REPO, timeout=300, env=env, check=False
    )


def _listings(db: str) -> list[tuple[str, str]]:
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            return list(session.execute(sql_select(Source.name, Listing.url).join(Source)).all())
    finally:
        engine.dispose()


def _count(db: str) -> int:
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            return session.scalar(sql_select(func.count()).select_from(Listing)) or 0
    finally:
        engine.dispose()


def test_the_shipped_example_ingests_with_the_readme_command(sqlite_url: str) -> None:
    result = _run("ingest", "examples/listings.jsonl", "--db", sqlite_url, "-f", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    assert json.loads(result.stdout)[0]["listings_new"] == 7
    assert len(_listings(sqlite_url)) == 7


def test_bad_bytes_on_stdin_cost_one_line_and_no_traceback(sqlite_url: str) -> None:
    stdin = (
        b'{"source": "s", "url": "u1", "title": "Korg MS-20 s/n 143210"}\n'
        b'{"source": "s", "url": "u2", "title": "Korg MS-10 caf\xe9"}\n'
        b'{"source": "s", "url": "u3", "title": "Korg MS-10 s/n 134458", "price": 1e400}\n'
        b'{"source": "s", "url": "u4", "title": "Korg Polysix \\u0000"}\n'
    )
    result = _run("ingest", "-", "--db", sqlite_url, "-f", "json", stdin=stdin)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "Traceback" not in stderr
    where = stdin.splitlines()[1].index(b"\xe9") + 1
    assert stderr.splitlines() == [
        f"<stdin>: line 2: not UTF-8 text (byte 0xe9 at byte {where})",
        "<stdin>: line 3: price out of range (10^16 or more): '1E+400'",
        "<stdin>: line 4: title: NUL or lone surrogate replaced by U+FFFD; stored",
    ]
    assert sorted(url for _, url in _listings(sqlite_url)) == ["u1", "u4"]


def test_source_option_and_skip(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text(
        "".join(json.dumps({"url": f"u{i}", "title": f"Korg MS-20 #{i}"}) + "\n" for i in range(1, 6)),
        encoding="utf-8",
    )
    assert _run("ingest", str(path), "--db", sqlite_url).returncode == 1  # no source: every line refused
    assert _listings(sqlite_url) == []
    result = _run("ingest", str(path), "--db", sqlite_url, "--source", "mine", "--skip", "3", "-f", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(_listings(sqlite_url)) == [("mine", "u4"), ("mine", "u5")]


def test_help_documents_the_record_format() -> None:
    result = _run("ingest", "--help", env={**os.environ, "COLUMNS": "200"})
    text = result.stdout.decode()
    for word in ("source, url, title: required", "external_id", "posted_at", "price", "currency", "images", "extra"):
        assert word in text
    assert "--source" in text and "--skip" in text


def test_no_progress_output_when_stdout_is_not_a_terminal(sqlite_url: str) -> None:
    result = _run("ingest", "examples/listings.jsonl", "--db", sqlite_url, "-f", "json")
    json.loads(result.stdout)  # the result only: nothing else on stdout
    assert b"listings/s" not in result.stdout + result.stderr


def _on_a_terminal(*args: str) -> str:
    """Run korgwatch with its standard output on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "160"}
    process = subprocess.Popen([*KORGWATCH, *args], stdout=follower, stderr=subprocess.PIPE, cwd=REPO, env=env)
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the command has ended
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()
    return output.decode(errors="replace")


def test_progress_and_summary_line_on_a_terminal(sqlite_url: str) -> None:
    text = _on_a_terminal("ingest", "examples/listings.jsonl", "--db", sqlite_url, "-f", "json")
    summary = r"ingest examples/listings\.jsonl: 7 lines, 7 listings in [\d.]+ s \([\d,]+ listings/s\), 0 errors"
    assert re.search(summary, text), text


def test_register_import_summary_line_on_a_terminal(sqlite_url: str) -> None:
    text = _on_a_terminal("register", "import", "config/register/seed.csv", "--db", sqlite_url, "-f", "json")
    assert re.search(r"register import config/register/seed\.csv: [\d,]+ lines, [\d,]+ rows in", text), text


@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c twice"])
def test_ctrl_c_stops_after_the_batch_in_flight_and_the_resume_completes_it(
    sqlite_url: str, tmp_path: Path, presses: int
) -> None:
    """One Ctrl-C: the batch in flight is stored, then the ingest stops. Twice: it stops at once (the batch in
    flight rolled back). Either way exit 130, a resume point, and resuming there stores the rest, nothing twice."""
    total = 60_000
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(total):
            out.write(json.dumps({"source": "big", "url": f"https://e.test/{i}", "title": f"Korg MS-20 #{i}"}) + "\n")
    _run("db", "upgrade", "--db", sqlite_url)
    process = subprocess.Popen(
        [*KORGWATCH, "ingest", str(path), "--db", sqlite_url, "--batch-size", "500", "-f", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    deadline = time.monotonic() + 120
    while _count(sqlite_url) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the ingest ended before it could be interrupted"
    for _ in range(presses):
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    message = stderr.decode()
    assert "Traceback" not in message
    found = re.search(
        r"interrupted: lines 1–(\d+) done \((\d+) listings stored\); resume with: korgwatch ingest (\S+) --skip (\d+)",
        message,
    )
    assert found, message
    done, stored, resume_path, skip = int(found[1]), int(found[2]), found[3], int(found[4])
    assert resume_path == str(path) and skip == done == stored < total
    if presses == 1:
        assert _count(sqlite_url) == stored  # every line up to the resume point, nothing after it
    else:  # a signal between a commit and its count can only put the resume point behind the store
        assert _count(sqlite_url) >= stored
    before = _count(sqlite_url)
    result = _run("ingest", str(path), "--db", sqlite_url, "--skip", str(skip), "-f", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)[0]["listings_new"] == total - before
    assert _count(sqlite_url) == total


def test_ctrl_c_during_register_import_rolls_it_back_and_says_so(sqlite_url: str, tmp_path: Path) -> None:
    """A register import is one transaction: Ctrl-C leaves nothing half-imported and says to run it again."""
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("model,serial,date,note,url\n")
        for i in range(300_000):
            out.write(f"MS-20,{140000 + i % 99_999},,row {i},\n")
    _run("db", "upgrade", "--db", sqlite_url)
    process = subprocess.Popen(
        [*KORGWATCH, "register", "import", str(path), "--db", sqlite_url], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=REPO,
    )
    deadline = time.monotonic() + 120
    while not _has_open(process.pid, path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until it reads the file: past start-up, rows under way
    assert process.poll() is None, "the import ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    message = stderr.decode()
    assert process.returncode == 130, message
    assert "Traceback" not in message and f"{path}: interrupted: nothing imported" in message
    again = _run("register", "import", str(path), "--db", sqlite_url, "-f", "json")
    assert again.returncode == 0, again.stderr.decode()


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (Linux /proc)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # the process ended, or a descriptor closed while we looked
        return False
