"""`korgwatch analyze` and `korgwatch rules explain` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from korgwatch.cli import app

runner = CliRunner()


def test_readme_example_through_the_installed_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "korgwatch.cli", "analyze"],
        input=b'{"title":"Korg MS-20 SN 730144"}\n',
        capture_output=True,
        check=True,
    )
    (line,) = result.stdout.decode().splitlines()
    (instrument,) = json.loads(line)["instruments"]
    assert instrument["model"] == "MS-20"
    assert instrument["flags"][0]["code"] == "serial_outside_blocks"
    assert "Poly-61" in instrument["flags"][0]["models"]


def test_bad_lines_are_named_and_good_lines_still_analysed(tmp_path: Path) -> None:
    path = tmp_path / "listings.jsonl"
    path.write_bytes(
        b'{"title": "Korg MS-20 SN 144571", "url": "https://example.test/1"}\n'
        b"this is not json\n"
        b'{"body": "no title here"}\n'
        b"\xff\xfe\x00binary\n"
        b'["a list"]\n'
        b'{"title": "Roland Juno-60"}\n'
    )
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["title"] for o in out] == ["Korg MS-20 SN 144571", "Roland Juno-60"]
    assert out[0]["url"] == "https://example.test/1"  # other keys pass through
    assert out[0]["instruments"][0]["serial"] == "144571"
    assert out[1]["instruments"] == []
    for number, words in [
        (2, "not JSON"),
        (3, "missing 'title'"),
        (4, "not UTF-8"),
        (5, "expected a JSON object"),
    ]:
        assert f"line {number}: {words}" in result.stderr


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyze", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "nope.jsonl: cannot read" in result.stderr


def test_rules_explain_names_every_fitting_model() -> None:
    result = runner.invoke(app, ["rules", "explain", "439057"])
    assert result.exit_code == 0
    assert "MS-20 (439nnn)" in result.stdout
    assert "EPS-1 (43nnnn)" in result.stdout


def test_rules_explain_a_serial_that_fits_nothing() -> None:
    result = runner.invoke(app, ["rules", "explain", "1703C036"])
    assert result.exit_code == 0
    assert "not a serial of the model-number era" in result.stdout
