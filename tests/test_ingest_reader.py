"""The one line reader (db/jsonlines.py) as `analyze` and `register import` use it: each bad line is one
reported line, the good lines around it are kept (issues 13.1 and 17.7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.jsonlines import LineError, decode_line, read_json_line
from korgwatch.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("raw", "number", "message"),
    [
        (b'{"a": "\xff"}', 2, "not UTF-8 text (byte 0xff at byte 8)"),
        # only one BOM is dropped
        (b"\xef\xbb\xbf\xef\xbb\xbf{}", 1, "not JSON (Unexpected UTF-8 BOM (decode using utf-8-sig) at column 1)"),
        (b"[" * 200_000 + b"]" * 200_000, 3, "not JSON (nested too deeply)"),
        (b'{"a": 1', 4, "not JSON (the line ends at column 7 before the record does: cut short?)"),
    ],
)
def test_bad_lines_say_what_is_wrong(raw: bytes, number: int, message: str) -> None:
    with pytest.raises(LineError) as error:
        read_json_line(raw, number)
    assert str(error.value) == message


def test_a_bom_on_line_1_is_not_an_error_and_numbers_are_exact() -> None:
    assert read_json_line(b'\xef\xbb\xbf{"a": 1}\n', 1) == {"a": 1}
    assert decode_line("\ufeffx", 1) == "x"
    exact = read_json_line(b'{"price": 123456789012345.99}', 1, exact_numbers=True)
    assert str(exact["price"]) == "123456789012345.99"


def test_analyze_reports_surrogates_and_deep_nesting_as_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(
        b'{"title": "Korg MS-20 SN 144571"}\n'
        b'{"title": "Korg MS-20 \\ud800"}\n'
        + b"[" * 200_000 + b"]" * 200_000 + b"\n"
        b'{"title": "Korg MS-10 \\ud83d\\ude00 SN 134458"}\n'  # a proper pair is fine
        b'{"title": "caf\xe9"}\n'
    )
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert [json.loads(line)["title"] for line in result.stdout.splitlines()] == [
        "Korg MS-20 SN 144571",
        "Korg MS-10 \U0001f600 SN 134458",
    ]
    assert f"{path}: line 2: contains a lone surrogate" in result.stderr
    assert f"{path}: line 3: not JSON (nested too deeply)" in result.stderr
    assert f"{path}: line 5: not UTF-8 text (byte 0xe9 at byte 15)" in result.stderr


def test_register_import_keeps_the_good_rows_around_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_bytes(
        b"\xef\xbb\xbfmodel,serial,date,note,url\n"
        b"MS-20,143210,2024,ok,https://x/1\n"
        b"MS-10,13\xff4458,2024,bad,https://x/2\n"
        b"Polysix,388831,2024,caf\xe9,https://x/3\n"
        b"MS-10,134458,2024-05,ok,https://x/4\n"
    )
    db = f"sqlite:///{tmp_path / 'k.sqlite'}"
    result = runner.invoke(app, ["register", "import", str(path), "--db", db, "-f", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["added"] == 2
    assert result.stderr.splitlines() == [
        f"{path}: line 3: not UTF-8 text (byte 0xff at byte 9)",
        f"{path}: line 4: not UTF-8 text (byte 0xe9 at byte 24)",
    ]
