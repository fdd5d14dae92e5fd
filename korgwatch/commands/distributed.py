"""Distributed crawling commands: `enqueue` (start runs), `worker` (crawl them), `dead-letter` (listings the
store refused), and `sample-site` (the demo's fixture site as a server, for workers on other processes)."""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crawler.sources import SourcesError, load_sources
from korgwatch.output import Format, FormatOption, emit
from korgwatch.paths import default_db_url
from korgwatch.store import DbOption

console = Console()
err_console = Console(stderr=True)

RedisOption = Annotated[
    str | None, typer.Option("--redis", help="Redis URL (default: KORGWATCH_REDIS_URL).", show_default=False)
]


def _writable(db: str | None) -> str:
    """The store of a writing command, created or upgraded; a bad or foreign one is one line and exit 2."""
    from db.engine import StoreError
    from korgwatch.store import writable_store

    try:
        store = writable_store(db)
        err_console.print(f"Store: {store.describe()}", highlight=False, markup=False, soft_wrap=True)
        return store.url
    except StoreError as exc:
        err_console.print(f"store: {exc}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _redis_url(value: str | None) -> str:
    url = value or os.environ.get("KORGWATCH_REDIS_URL")
    if not url:
        err_console.print("Set KORGWATCH_REDIS_URL (or --redis), e.g. redis://127.0.0.1:6379/0.")
        raise typer.Exit(2)
    return url


def _source_names(sources: list[str] | None, all_sources: bool, config: Path | None) -> list[str]:
    try:
        crawl_config = load_sources(config)
        names = [s.name for s in crawl_config.enabled()] if all_sources else list(sources or [])
        for name in names:
            crawl_config.source(name)
    except SourcesError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    if not names:
        err_console.print("Name at least one source, or use --all.")
        raise typer.Exit(2)
    return names


def enqueue(
    sources: Annotated[list[str] | None, typer.Argument(help="Sources to crawl (see config/sources.yaml).")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every enabled source.")] = False,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Move the sources here (one source: its base; several: a root /<source>)."),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Page to the end instead of stopping at known pages.")] = False,
    redis_url: RedisOption = None,
    db: DbOption = None,
    config: Annotated[Path | None, typer.Option("--config", help="Sources file.")] = None,
) -> None:
    """Start a distributed run of each source: a `crawl_runs` row, and a start message for the workers.

    Example: KORGWATCH_REDIS_URL=redis://127.0.0.1:6379/0 korgwatch enqueue --all
    """
    import redis

    from crawler.distributed.enqueue import enqueue_runs
    from crawler.run import resolve_base_urls

    names = _source_names(sources, all_sources, config)
    db_url = _writable(db)
    try:
        runs = enqueue_runs(
            _redis_url(redis_url),
            db_url,
            names,
            base_urls=resolve_base_urls(names, base_url),
            full=full,
        )
    except redis.RedisError as exc:
        err_console.print(f"[red]Redis unreachable: {exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    table = Table(title="Enqueued runs")
    for column in ("run", "source", "base URL"):
        table.add_column(column)
    for run in runs:
        table.add_row(str(run.run), run.source, run.base_url or "(configured)")
    console.print(table)


def worker(
    sources: Annotated[
        str | None, typer.Option("--sources", help="Comma-separated sources to work on (default: every enabled one).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="This worker's name in `korgwatch runs`.")] = None,
    redis_url: RedisOption = None,
    db: DbOption = None,
    config: Annotated[Path | None, typer.Option("--config", help="Sources file.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Scrapy log level.")] = "INFO",
    impolite: Annotated[
        bool, typer.Option("--impolite", help="No delays and no robots.txt: only for your own test servers.")
    ] = False,
    flush_interval: Annotated[float, typer.Option("--report-every", help="Seconds between run reports.")] = 2.0,
    peer_timeout: Annotated[
        float, typer.Option("--peer-timeout", help="Seconds after which a silent busy worker counts as dead.")
    ] = 60.0,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="A Scrapy or korgwatch setting NAME=VALUE, repeatable (e.g. -s KORGWATCH_STORE_RETRIES=3).",
        ),
    ] = None,
) -> None:
    """Crawl the runs others enqueue, sharing each source's queue in Redis with any number of workers.

    Idles while the queue is empty; stops cleanly on SIGTERM or Ctrl-C (requests in flight finish, the
    last listings are stored). Set KORGWATCH_DB to the shared PostgreSQL database.

    Example: KORGWATCH_REDIS_URL=redis://127.0.0.1:6379/0 KORGWATCH_DB=postgresql+psycopg://... korgwatch worker
    """
    from crawler.distributed.tracker import default_worker_name
    from crawler.run import CrawlOptions, WorkerOptions, run_crawls

    url = _redis_url(redis_url)
    names = _source_names(sources.split(",") if sources else None, not sources, config)
    overrides = _settings(setting or [])
    worker_name = name or default_worker_name()
    db_url = _writable(db)
    _wait_for_redis(url)
    if db_url.startswith("sqlite"):
        err_console.print(
            "note: the store is an SQLite file, which only workers on this machine can share; "
            "set KORGWATCH_DB to PostgreSQL to spread the crawl over machines"
        )
    err_console.print(f"worker {worker_name}: sources {', '.join(names)}; Redis {url}; waiting for runs")
    run_crawls(
        CrawlOptions(
            sources=names,
            db_url=db_url,
            config_path=config,
            polite=not impolite,
            progress=False,
            record=False,
            settings={"LOG_LEVEL": log_level.upper(), **overrides},
            worker=WorkerOptions(url, worker_name, flush_interval, peer_timeout),
        )
    )
    err_console.print(f"worker {worker_name}: stopped")


def _settings(pairs: list[str]) -> dict[str, str]:
    """`--set NAME=VALUE` pairs as settings (Scrapy converts the text when a setting is read)."""
    settings: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            err_console.print(f"--set {pair!r}: expected NAME=VALUE", highlight=False)
            raise typer.Exit(2)
        settings[name.strip()] = value
    return settings


def _wait_for_redis(url: str) -> None:
    """A worker may start before Redis: wait (SIGTERM still stops it) instead of failing."""
    import redis

    from crawler.distributed.enqueue import redis_client

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        said = False
        while not stop.is_set():
            try:
                redis_client(url).ping()
                return
            except redis.RedisError as exc:
                if not said:
                    err_console.print(f"Redis unreachable ({exc}); waiting")
                    said = True
                time.sleep(1.0)
        raise typer.Exit(0)
    finally:
        signal.signal(signal.SIGTERM, previous)


dead_letter_app = typer.Typer(help="Listings the store refused after every retry, kept to be replayed.")


@dead_letter_app.command("list")
def dead_letter_list(
    directory: Annotated[Path | None, typer.Option("--dir", help="Dead-letter folder (default: data dir).")] = None,
    output: FormatOption = Format.table,
) -> None:
    """Files of dead letters waiting, with how many listings and the last error.

    Example: korgwatch dead-letter list -f json
    """
    from crawler.deadletter import dead_letter_dir, pending_files, read_dead_letters

    folder = dead_letter_dir(directory)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for path in pending_files(folder):
        letters = list(read_dead_letters(path, problems))
        rows.append({"file": path.name, "listings": len(letters), "last_error": letters[-1].error if letters else ""})
    if output == Format.table:
        for row in rows:
            row["last_error"] = row["last_error"][:100]
    emit(rows, output.value, ["file", "listings", "last_error"], title="Dead letters", store=str(folder))
    for problem in problems:
        err_console.print(problem, highlight=False)


@dead_letter_app.command("replay")
def dead_letter_replay(
    files: Annotated[list[Path] | None, typer.Argument(help="Files to replay (default: every waiting file).")] = None,
    directory: Annotated[Path | None, typer.Option("--dir", help="Dead-letter folder (default: data dir).")] = None,
    db: DbOption = None,
) -> None:
    """Store the dead letters now (the database is back); a file whose letters are all stored is renamed
    `*.replayed`, and a file keeps only the letters the store still refuses (each named with its reason).

    Example: korgwatch dead-letter replay
    """
    from crawler.deadletter import dead_letter_dir, pending_files, replay_file
    from db.engine import make_engine
    from db.migrate import upgrade
    from korgwatch.progress import INTERRUPTED_EXIT, WorkProgress, count_lines, stop_on_interrupt
    from pipeline.rules import load_rules

    paths = list(files or pending_files(dead_letter_dir(directory)))
    db_url = db or default_db_url()
    upgrade(db_url)
    engine = make_engine(db_url)
    rules = load_rules()
    failed = False
    total = sum(count_lines(path) or 0 for path in paths)
    done = [0, 0, 0]  # lines, listings, errors

    def progress(lines: int, listings: int, errors: int) -> None:
        done[0], done[1], done[2] = done[0] + lines, done[1] + listings, done[2] + errors
        bar.update(*done)

    try:
        with WorkProgress("dead-letter replay", total) as bar, stop_on_interrupt() as stop:
            for path in paths:
                if stop.is_set():
                    err_console.print("interrupted: the files not yet replayed are left as they are", highlight=False)
                    raise typer.Exit(INTERRUPTED_EXIT)
                result = replay_file(path, engine, rules, progress)
                for problem in [*result.problems, *result.kept]:
                    err_console.print(problem, highlight=False, markup=False, soft_wrap=True)
                failed = failed or bool(result.problems or result.kept)
                summary = result.summary
                assert summary is not None
                console.print(
                    f"{path.name}: {result.letters} listings replayed ({summary.listings_new} new, "
                    f"{summary.listings_updated} updated, {summary.listings_unchanged} unchanged"
                    + (f", {len(result.kept)} still refused, kept in the file)" if result.kept else ")"),
                    highlight=False,
                    soft_wrap=True,
                )
        bar.summary("dead-letter replay")
    except KeyboardInterrupt:  # a second Ctrl-C: the file in flight is left as it was
        err_console.print("interrupted: the file in flight and those after it are left as they are", highlight=False)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    finally:
        engine.dispose()
    if failed:
        raise typer.Exit(1)


def sample_site(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 = any free port).")] = 8765,
) -> None:
    """Serve the demo's fixture site (every source's real format) on loopback until Ctrl-C or SIGTERM.

    Example: korgwatch sample-site --port 8765 & korgwatch enqueue --all --base-url http://127.0.0.1:8765
    """
    from crawler.demo.site import FixtureSite, serve
    from korgwatch.listen import why_not

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ExitStack() as stack:
        try:
            site = stack.enter_context(serve(FixtureSite(), port=port))
        except OSError as exc:
            err_console.print(why_not("127.0.0.1", port, exc), highlight=False, markup=False)
            raise typer.Exit(2) from None
        except OverflowError:
            err_console.print(f"--port {port}: not a port number (0-65535)", highlight=False, markup=False)
            raise typer.Exit(2) from None
        console.print(f"sample site on {site.root} (every source under /<source>); Ctrl-C stops it", highlight=False)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command()(enqueue)
    app.command()(worker)
    app.command("sample-site")(sample_site)
    app.add_typer(dead_letter_app, name="dead-letter")
