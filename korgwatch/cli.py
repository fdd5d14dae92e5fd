"""The `korgwatch` command line: a thin caller of the library; each group of commands lives in its own module.

A command's modules are imported only when it runs (korgwatch/lazy.py), so that a read command does not start
Scrapy, Twisted, Alembic or Starlette: `COMMAND_MODULES` names, for each command, the modules that define it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from korgwatch import help_format
from korgwatch.lazy import lazy_group

help_format.install()

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}  # inherited by every group and command below

# command → the modules of korgwatch/commands/ that define it (each module's `register(app)` adds it);
# in the order `korgwatch --help` lists them. tests/test_startup.py checks this against the modules.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "analyze": ("analysis",),
    "rules": ("analysis",),
    "ingest": ("storage",),
    "queue": ("reports",),
    "history": ("reports",),
    "export": ("reports",),
    "stats": ("reports",),
    "db": ("database",),
    "register": ("storage",),
    "review": ("storage", "reviewing"),  # reviewing.py adds `reopen` and `verify-log` to storage's group
    "crawl": ("crawling",),
    "demo": ("crawling",),
    "serve": ("serve",),
    "runs": ("schedule",),
    "status": ("schedule",),
    "schedule": ("schedule",),
    "enqueue": ("distributed",),
    "worker": ("distributed",),
    "sample-site": ("distributed",),
    "dead-letter": ("distributed",),
    "notify": ("notify",),
    "watch": ("watch",),
    "feed": ("feed",),
    "photos": ("photos",),
}

app = typer.Typer(
    name="korgwatch",
    help="Watch second-hand listings of vintage Korg instruments and check their serial numbers.",
    no_args_is_help=True,
    add_completion=False,
    context_settings=HELP_OPTIONS,
    cls=lazy_group(COMMAND_MODULES),
)


def korgwatch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # here: only --version needs it

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



def main() -> None:
    app()


if __name__ == "__main__":
    main()
