"""Crawl commands: `crawl` (real sources, or any moved to a test server) and `demo` (the fixture site).

Thin callers of `crawler.run.run_crawls`, which runs every named source in this one process (Twisted's
reactor runs once per process, so each command crawls once).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from crawler.run import CrawlOptions, print_report, resolve_base_urls, run_crawls
from crawler.sources import SourcesError, load_sources
from db.engine import StoreError, store_error_message
from korgwatch.paths import data_dir
from korgwatch.store import DbOption, writable_store

console = Console()
err_console = Console(stderr=True)

DEMO_CLIENT_ID = "korgwatch-demo"
DEMO_CLIENT_SECRET = "korgwatch-demo-secret"  # only the demo site's own token endpoint accepts it


def crawl(
    sources: Annotated[list[str] | None, typer.Argument(help="Sources to crawl (see config/sources.yaml).")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Crawl every enabled source.")] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Move the source (every request, token endpoint included) to this URL; with several "
            "sources, a root serving each under /<source>.",
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Page to the end instead of stopping at the first known page.")
    ] = False,
    db: DbOption = None,
    jobdir: Annotated[
        Path | None, typer.Option("--jobdir", help="Keep crawl state here; run again with it to resume.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Sources file (default: config/sources.yaml).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the runs as JSON to this file.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Scrapy log level.")] = "WARNING",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show live progress.")] = True,
    impolite: Annotated[
        bool,
        typer.Option("--impolite", help="No delays and no robots.txt: only for your own test servers and mirrors."),
    ] = False,
    photos: Annotated[
        bool,
        typer.Option(
            "--photos/--no-photos",
            help="Fetch and keep listing photos (docs/photos.md); --no-photos leaves them alone for this run.",
        ),
    ] = True,
) -> None:
    """Crawl sources into the store, then print a summary per source; each run is recorded in crawl_runs.

    Example: korgwatch crawl reverb ebay --db sqlite:///korgwatch.sqlite
    Example: korgwatch crawl matrixsynth --base-url http://127.0.0.1:8000/matrixsynth --full
    """
    try:
        crawl_config = load_sources(config)
    except SourcesError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    names = [s.name for s in crawl_config.enabled()] if all_sources else list(sources or [])
    if not names:
        err_console.print("Name at least one source, or use --all.")
        raise typer.Exit(2)
    try:
        store = writable_store(db)
    except StoreError as exc:
        err_console.print(f"store: {exc}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    db_url = store.url
    try:
        runs = run_crawls(
            CrawlOptions(
                sources=names,
                db_url=db_url,
                base_urls=resolve_base_urls(names, base_url),
                full=full,
                jobdir=jobdir,
                config_path=config,
                progress=progress,
                polite=not impolite,
                photos=photos,
                settings={"LOG_LEVEL": log_level.upper()},
            ),
            console=err_console,
        )
    except (SourcesError, ValueError) as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:  # the store locked, full or gone: one line, not a traceback
        err_console.print(store_error_message(db_url, exc), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    print_report(runs, console)
    console.print(f"Stored in {store.describe()}", highlight=False, markup=False, soft_wrap=True)
    if json_out is not None:
        json_out.write_text(json.dumps([r.to_dict() for r in runs], indent=2), encoding="utf-8")
    if any(r.outcome not in ("ok", "skipped") for r in runs):
        raise typer.Exit(1)


def demo(
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show live progress.")] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="Scrapy log level.")] = "ERROR",
) -> None:
    """Crawl the bundled fixture site (every source's real format, on a loopback port) into a fresh database.

    Shows the whole pipeline offline in under a minute: crawl, analysis, store, summary and the review queue.

    Example: korgwatch demo
    """
    from crawler.demo.site import FixtureSite, serve
    from db.engine import make_engine, session_scope
    from db.queries import review_queue

    demo_dir = data_dir() / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)
    db_url = f"sqlite:///{demo_dir / 'korgwatch-demo.sqlite'}"
    os.environ["EBAY_CLIENT_ID"] = DEMO_CLIENT_ID
    os.environ["EBAY_CLIENT_SECRET"] = DEMO_CLIENT_SECRET
    names = [s.name for s in load_sources().enabled()]
    from korgwatch.notify.demo import DemoNotifications

    notifications = DemoNotifications(db_url)  # a json:// target to a loopback recorder: shown at the end
    with serve(FixtureSite()) as site:
        console.print(f"Fixture site on {site.root}; the demo's own store {db_url} (--db and KORGWATCH_DB not used)")
        runs = run_crawls(
            CrawlOptions(
                sources=names,
                db_url=db_url,
                base_urls={name: site.base_url(name) for name in names},
                evidence_dir=demo_dir / "evidence",
                progress=progress,
                settings={
                    "LOG_LEVEL": log_level.upper(),
                    "DOWNLOAD_DELAY": 0.05,
                    "AUTOTHROTTLE_ENABLED": False,
                    "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
                },
            ),
            console=err_console,
        )
    print_report(runs, console)
    from crawler.photo_store import photo_dir

    kept = sum(r.photos_kept for r in runs)
    console.print(
        f"Kept {kept} listing photos in {photo_dir()} (content-addressed, with EXIF-free thumbnails): the "
        "review page shows them from there, with the sample site stopped.",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )

    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            queue = review_queue(session)
    finally:
        engine.dispose()
    table = Table(title=f"Open review queue ({len(queue)} flags)")
    for column in ("flag", "source", "model", "serial", "code", "why", "title"):
        table.add_column(column)
    for item in queue:
        table.add_row(
            str(item.flag_id),
            item.source,
            item.model or "",
            item.serial or "",
            item.code,
            item.message,
            item.title,
        )
    console.print(table)
    console.print(
        f"Review them on the review page: [bold]korgwatch serve --db {db_url}[/], "
        f"or here: korgwatch queue --db {db_url}",
        highlight=False,
    )
    notifications.finish(console)
    if any(r.outcome not in ("ok", "skipped") for r in runs):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `crawl` and `demo` to the korgwatch command line."""
    app.command("crawl")(crawl)
    app.command("demo")(demo)


def _standalone() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, add_completion=False)
    register(app)
    return app


if __name__ == "__main__":  # `python -m korgwatch.commands.crawling demo` before cli.py wires it in
    _standalone()()
