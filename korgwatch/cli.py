"""The `korgwatch` command line: a thin caller of the library; each group of commands lives in its own module."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from korgwatch import help_format
from korgwatch.commands import (
    analysis,
    crawling,
    distributed,
    feed,
    notify,
    photos,
    reviewing,
    schedule,
    serve,
    storage,
    watch,
)

help_format.install()

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}  # inherited by every group and command below

app = typer.Typer(
    name="korgwatch",
    help="Watch second-hand listings of vintage Korg instruments and check their serial numbers.",
    no_args_is_help=True,
    add_completion=False,
    context_settings=HELP_OPTIONS,
)


def korgwatch_version() -> str:
    try:
        return version("korgwatch")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"korgwatch {korgwatch_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print korgwatch's version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Watch second-hand listings of vintage Korg instruments and check their serial numbers."""


analysis.register(app)
storage.register(app)
reviewing.register(app)
crawling.register(app)
serve.register(app)
schedule.register(app)
distributed.register(app)
notify.register(app)
watch.register(app)
feed.register(app)
photos.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
