"""The `korgwatch` command line: a thin caller of the library; each group of commands lives in its own module."""

from __future__ import annotations

import typer

from korgwatch.commands import (
    analysis,
    crawling,
    distributed,
    feed,
    notify,
    reviewing,
    schedule,
    serve,
    storage,
    watch,
)

app = typer.Typer(
    name="korgwatch",
    help="Watch second-hand listings of vintage Korg instruments and check their serial numbers.",
    no_args_is_help=True,
    add_completion=False,
)

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
