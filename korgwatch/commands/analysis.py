"""`korgwatch analyze` and `korgwatch rules ...`: the analyser and its rules from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from db import json_errors
from korgwatch.paths import config_dir
from pipeline.analyse import analyser_for
from pipeline.checks import explain_serial
from pipeline.normalise import normalise
from pipeline.rules import Rules, RulesError, check_rules, load_rules
from pipeline.serials import canonical_serial

rules_app = typer.Typer(help="Check and explain the number-block rules in config/.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Rules folder (default: KORGWATCH_CONFIG or the shipped config/).")
]


def _load(config: Path | None) -> Rules:
    try:
        return load_rules(config or config_dir())
    except RulesError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(2) from None


@rules_app.command("check")
def rules_check(config: ConfigOption = None) -> None:
    """Validate the rules files and report every problem with its file and line.

    Example: korgwatch rules check --config ./my-config
    """
    rules, problems = check_rules(config or config_dir())
    for problem in problems:
        typer.echo(str(problem), err=True)
    if rules is None:
        typer.echo(f"{len(problems)} problem(s) found.", err=True)
        raise typer.Exit(1)
    blocks = sum(len(m.blocks) for m in rules.models.values())
    typer.echo(
        f"ok: {len(rules.models)} models, {blocks} number blocks, {len(rules.exclusions)} exclusions "
        f"in {', '.join(rules.files)}"
    )


@rules_app.command("explain")
def rules_explain(
    serial: Annotated[str, typer.Argument(help="A serial number, e.g. 439057.")],
    config: ConfigOption = None,
) -> None:
    """Say which models' number blocks a serial fits, and why.

    Example: korgwatch rules explain 439057
    """
    rules = _load(config)
    for line in explain_serial(canonical_serial(normalise(serial.strip())), rules):
        typer.echo(line)


def _read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def _listing_from_line(raw: bytes, where: str) -> dict[str, Any]:
    """One JSON Lines record, or a ValueError that says what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not UTF-8 text (binary input?)") from None
    if "\x00" in text:
        raise ValueError(f"{where}: contains a NUL byte (binary input?)")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: {json_errors.describe(exc, text)}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if not isinstance(record.get("title"), str):
        raise ValueError(f"{where}: missing 'title' (a string)")
    body = record.get("body", "")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"{where}: 'body' must be a string")
    return record


@contextmanager
def _open_input(path: str) -> Iterator[BinaryIO]:
    """The input stream; only a failure to open it is reported as unreadable input."""
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; errors of the body must not read as open errors
    except OSError as exc:
        typer.echo(f"{path}: cannot read ({exc.strerror})", err=True)
        raise typer.Exit(2) from None
    with handle:
        yield handle


def analyze(
    source: Annotated[str, typer.Argument(help="A JSON Lines file, or - for standard input.")] = "-",
    config: ConfigOption = None,
) -> None:
    """Analyse listings: read JSON Lines {"title", "body", ...}, write each with its instruments and flags.

    Example: echo '{"title":"Korg MS-20 SN 730144"}' | korgwatch analyze
    """
    rules = _load(config)
    analyser = analyser_for(rules)
    name = "<stdin>" if source == "-" else source
    errors = 0
    out = sys.stdout
    with _open_input(source) as stream:
        for number, raw in _read_lines(stream):
            try:
                record = _listing_from_line(raw, f"{name}: line {number}")
            except ValueError as exc:
                errors += 1
                typer.echo(str(exc), err=True)
                continue
            result = analyser.analyse(record["title"], record.get("body") or "")
            try:
                out.write(json.dumps({**record, **result.to_dict()}, ensure_ascii=False) + "\n")
            except BrokenPipeError:
                raise typer.Exit(0) from None
    try:
        out.flush()
    except BrokenPipeError:  # the reader (head, less) has gone: not an error of ours
        raise typer.Exit(0) from None
    if errors:
        typer.echo(f"{errors} line(s) skipped.", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""
    app.add_typer(rules_app, name="rules")
    app.command("analyze")(analyze)
