"""How listing commands print scraped text: as it is, never as Rich markup, never a terminal escape sequence."""

from __future__ import annotations

import json

import pytest

from korgwatch.output import emit, emit_pages

HOSTILE = {"title": "Korg MS-20 [/bold] [link=https://evil.invalid]click[/link]", "url": "https://e.invalid/\x1b[2J"}
COLUMNS = ["title", "url"]


@pytest.mark.parametrize("streamed", [False, True], ids=["emit", "emit_pages"])
def test_a_table_shows_brackets_as_written_and_no_escape(streamed: bool, capsys: pytest.CaptureFixture[str]) -> None:
    if streamed:
        emit_pages([[HOSTILE]], "table", COLUMNS, title="t [x]", store="s")
    else:
        emit([HOSTILE], "table", COLUMNS, title="t [x]", store="s")
    out = capsys.readouterr().out
    assert "[/bold]" in out and "[link=https://evil.invalid]click[/link]" in out and "t [x]" in out
    assert "\x1b" not in out


def test_lines_cut_wide_values_keep_the_last_column_and_drop_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"title": "x" * 100, "url": "https://e.invalid/" + "y" * 100}, HOSTILE]
    emit_pages([rows[:1], rows[1:]], "table", COLUMNS, title="queue", store="s", lines=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "queue — s" and out[1].split() == COLUMNS
    assert out[2].startswith("x" * 59 + "…") and out[2].endswith("y" * 100)
    assert "[/bold]" in out[3] and "\x1b" not in "".join(out)


def test_streamed_json_is_the_same_array_as_emit(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"title": f"t{i}", "url": None, "n": [i, {"x": "é"}]} for i in range(5)]
    emit(rows, "json", COLUMNS)
    whole = capsys.readouterr().out
    emit_pages([rows[:2], [], rows[2:]], "json", COLUMNS)
    assert capsys.readouterr().out == whole and json.loads(whole) == rows
