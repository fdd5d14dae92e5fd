"""Run crawls in this process: one Scrapy Crawler per source (each with its own politeness), one reactor.

`run_crawls()` is what `korgwatch crawl`, `korgwatch demo`, the scheduler and the tests call. It returns one
`SourceRun` per source (pages, listings new/updated/unchanged, instruments, flags, errors, outcome) and
records each run in the store's `crawl_runs`. Twisted's reactor cannot be restarted, so it runs once per
process: tests and schedulers call `python -m crawler.run` in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich import box
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from crawler.evidence import clean_partial_writes, default_evidence_dir
from crawler.monitors import FAILURES_STAT
from crawler.photo_store import photo_dir
from crawler.pipelines import FATAL_STAT, INGEST_STATS
from crawler.settings import crawl_settings
from crawler.sources import CrawlConfig, SourceConfig, SourcesError, load_sources
from crawler.spiders.base import KorgSpider
from crawler.spiders.ebay import EbaySpider, has_credentials
from crawler.spiders.jsonld import JsonldSpider
from crawler.spiders.matrixsynth import MatrixsynthSpider
from crawler.spiders.reverb import ReverbSpider
from crawler.spiders.yahoo_auctions import YahooAuctionsSpider
from db.run_ledger import LocalRun, SourceBusy

logger = logging.getLogger(__name__)

SPIDERS: dict[str, type[KorgSpider]] = {
    "matrixsynth": MatrixsynthSpider,
    "reverb": ReverbSpider,
    "ebay": EbaySpider,
    "yahoo_auctions": YahooAuctionsSpider,
    "jsonld": JsonldSpider,
}
LOG_TAIL_LINES = 40
_T = TypeVar("_T")
LOCKED_RETRIES = 3  # busy timeouts a finished crawl waits to record its run before giving up with one line
_reactor_used = False


@dataclass
class SourceRun:
    """What one source's crawl did; `outcome` is ok/degraded/failed/timed_out, or `skipped`/`busy` (another
    crawl of the source runs), which are not recorded."""

    source: str
    outcome: str
    started_at: datetime
    finished_at: datetime
    finish_reason: str = ""
    pages: int = 0
    requests: int = 0
    listings_new: int = 0
    listings_updated: int = 0
    listings_unchanged: int = 0
    instruments_new: int = 0
    duplicate_sales: int = 0
    reposts: int = 0
    flags_raised: int = 0
    errors: int = 0
    retries: int = 0
    photos_kept: int = 0  # fetched and kept now, or kept by an earlier crawl (not fetched again)
    photos_refused: int = 0
    photos_failed: int = 0
    messages: list[str] = field(default_factory=list)
    log_tail: str = ""
    crawl_run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data


@dataclass
class CrawlOptions:
    """One crawl's choices. `base_urls` moves sources (all their requests) elsewhere, e.g. a test server."""

    sources: Sequence[str]
    db_url: str
    base_urls: dict[str, str] = field(default_factory=dict)
    full: bool = False
    jobdir: Path | None = None
    evidence_dir: Path | None = None
    #: Fetch and keep listing photos (each source's `photos:` limits apply); kept under `photo_dir`.
    photos: bool = True
    photo_dir: Path | None = None
    config_path: Path | None = None
    polite: bool = True
    progress: bool = True
    record: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    per_source_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: SourceConfig fields to replace for this run, e.g. {"jsonld": {"pages": (...), "page_limit": 100}}
    source_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Set: run as a distributed worker (runs come from Redis, are recorded by `enqueue` and the run ledger).
    worker: WorkerOptions | None = None


@dataclass(frozen=True)
class WorkerOptions:
    """A distributed worker's Redis, its name in `korgwatch runs`, and how often it reports its counts."""

    redis_url: str
    name: str
    flush_interval: float = 2.0
    peer_timeout: float = 60.0


class _TailHandler(logging.Handler):
    """Keeps each source's last warnings and errors for its crawl run's `log_tail`."""

    def __init__(self, sources: Sequence[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sources = set(sources)
        self.tails: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=LOG_TAIL_LINES))

    def emit(self, record: logging.LogRecord) -> None:
        spider = getattr(record, "spider", None)
        name = getattr(spider, "name", None) or (record.name if record.name in self.sources else None)
        if name in self.sources:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string must not break the crawl
                message = str(record.msg)
            self.tails[name].append(f"{record.levelname} {message}")


def resolve_base_urls(sources: Sequence[str], base_url: str | None, pairs: Sequence[str] = ()) -> dict[str, str]:
    """`--base-url URL` for one source is its base; for several, a root serving each under `/<source>`.
    `SOURCE=URL` sets one source's base explicitly."""
    result: dict[str, str] = {}
    if base_url:
        if len(sources) == 1:
            result[sources[0]] = base_url.rstrip("/")
        else:
            result = {name: f"{base_url.rstrip('/')}/{name}" for name in sources}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not url:
            raise ValueError(f"--base-url {pair!r}: expected SOURCE=URL")
        result[name] = url.rstrip("/")
    return result


def _outcome(stats: dict[str, Any], pages: int, failures: list[str], errors: int) -> str:
    """failed (fatal, stopped early, no page), timed_out, degraded (monitors failed or errors logged), or ok."""
    reason = str(stats.get("finish_reason", ""))
    if stats.get(FATAL_STAT):
        return "failed"
    if reason == "closespider_timeout":
        return "timed_out"
    if reason != "finished" or pages == 0:
        return "failed"
    return "degraded" if failures or errors else "ok"


def _stat_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return fallback


def summarise(source: str, stats: dict[str, Any], error_messages: Sequence[str], tail: Sequence[str]) -> SourceRun:
    """A SourceRun from one crawler's stats."""
    now = datetime.now(UTC)
    ingest = stats.get(INGEST_STATS) or {}
    failures = list(stats.get(FAILURES_STAT) or [])
    pages = int(stats.get("korgwatch/pages", 0))
    errors = int(stats.get("korgwatch/errors", 0))
    fatal = list(stats.get(FATAL_STAT) or [])
    messages = fatal + failures + [m for m in error_messages if m not in failures and m not in fatal]
    outcome = _outcome(stats, pages, failures, errors)
    if outcome == "failed" and pages == 0:
        messages.insert(0, "no page could be read")
    lines = [*tail, *(f"MONITOR {f}" for f in failures), *(f"FATAL {f}" for f in fatal)]
    return SourceRun(
        source=source,
        outcome=outcome,
        started_at=_stat_time(stats.get("start_time"), now),
        finished_at=_stat_time(stats.get("finish_time"), now),
        finish_reason=str(stats.get("finish_reason", "")),
        pages=pages,
        requests=int(stats.get("downloader/request_count", 0)),
        listings_new=int(ingest.get("listings_new", 0)),
        listings_updated=int(ingest.get("listings_updated", 0)),
        listings_unchanged=int(ingest.get("listings_unchanged", 0))
        + int(stats.get("korgwatch/listings_unchanged_skipped", 0)),
        instruments_new=int(ingest.get("instruments_new", 0)),
        duplicate_sales=int(ingest.get("duplicate_sales", 0)),
        reposts=int(ingest.get("reposts", 0)),
        flags_raised=int(ingest.get("flags_raised", 0)),
        errors=errors,
        retries=int(stats.get("retry/count", 0)),
        photos_kept=int(stats.get("korgwatch/photos/kept", 0)),
        photos_refused=int(stats.get("korgwatch/photos/refused", 0)),
        photos_failed=int(stats.get("korgwatch/photos/failed", 0)),
        messages=messages,
        log_tail="\n".join(lines[-LOG_TAIL_LINES:]),
    )


def lost_work(run: SourceRun) -> bool:
    """Whether the run stopped part-way after storing pages: the next incremental crawl would stop at them."""
    return run.outcome == "timed_out" or (run.outcome == "failed" and run.pages > 0)


def record_crawl_run(db_url: str, run: SourceRun, run_id: int | None = None) -> int:
    """Close the run's row opened at its start (`run_id`), or insert one; returns its id. One transaction."""
    from db.engine import make_engine

    engine = make_engine(db_url)
    try:
        return _retry_while_locked(lambda: _write_crawl_run(engine, run, run_id), f"recording the {run.source} run")
    finally:
        engine.dispose()


def _retry_while_locked(write: Callable[[], _T], what: str) -> _T:
    """Another writer holding the SQLite lock past the busy timeout: say so in one line and wait again."""
    from db.engine import store_locked

    attempt = 1
    while True:
        try:
            return write()
        except OperationalError as exc:
            if not store_locked(exc) or attempt >= LOCKED_RETRIES:
                raise
            logger.warning("%s: the store is locked by another writer; waiting again (%d)", what, attempt)
            attempt += 1


def _write_crawl_run(engine: Engine, run: SourceRun, run_id: int | None) -> int:
    from db.engine import session_scope
    from db.ingest import ensure_sources
    from db.models import CrawlRun

    with session_scope(engine) as session:
        row = session.get(CrawlRun, run_id) if run_id is not None else None
        if row is None:
            source_id = ensure_sources(session, [run.source])[run.source]
            row = CrawlRun(source_id=source_id, started_at=run.started_at)
            session.add(row)
        row.finished_at = run.finished_at
        row.outcome = run.outcome
        row.pages = run.pages
        row.listings_new = run.listings_new
        row.listings_updated = run.listings_updated
        row.listings_unchanged = run.listings_unchanged
        row.flags_raised = run.flags_raised
        row.errors = run.errors
        row.log_tail = run.log_tail or None
        row.incomplete = lost_work(run)
        session.flush()
        return row.id


def open_local_run(db_url: str, source: str, full: bool) -> LocalRun:
    """Record the run before it starts (the source's lease); raises SourceBusy if another crawl holds it."""
    from db.engine import make_engine, session_scope
    from db.run_ledger import begin_local_run

    def begin() -> LocalRun:
        with session_scope(engine) as session:
            return begin_local_run(session, source, datetime.now(UTC), full=full)

    engine = make_engine(db_url)
    try:
        local = _retry_while_locked(begin, f"recording the start of the {source} run")
    finally:
        engine.dispose()
    for run_id in local.interrupted:
        logger.warning("%s: run %d was left open by a process that is gone: closed `interrupted`", source, run_id)
    if local.recovering is not None:
        logger.warning(
            "%s: run %d lost work (interrupted or cut short): this run pages in full to recover it",
            source,
            local.recovering,
        )
    return local


@contextmanager
def _progress(enabled: bool, console: Console | None) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<15}"),
        TextColumn("{task.fields[pages]:>5} pages"),
        TextColumn("{task.fields[listings]:>6} listings"),
        TextColumn("{task.fields[errors]:>3} errors"),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    with progress:
        yield progress


def _watch(crawler: Crawler, progress: Progress, name: str) -> None:
    """Move the source's progress line on every page, listing and error (signals run in the reactor)."""
    task = progress.add_task(name, pages=0, listings=0, errors=0, state="")

    def update(**_: Any) -> None:
        stats = crawler.stats
        progress.update(
            task,
            pages=stats.get_value("korgwatch/pages", 0),
            listings=stats.get_value("item_scraped_count", 0),
            errors=stats.get_value("korgwatch/errors", 0),
        )

    def closed(reason: str, **_: Any) -> None:
        update()
        progress.update(task, state=reason, completed=1, total=1)

    for signal in (signals.response_received, signals.item_scraped):
        crawler.signals.connect(update, signal=signal, weak=False)
    crawler.signals.connect(closed, signal=signals.spider_closed, weak=False)


def run_crawls(options: CrawlOptions, *, console: Console | None = None) -> list[SourceRun]:
    """Crawl the given sources at once in this process; store listings; record and return one run per source.

    Raises SourcesError for an unusable sources file or an unknown source name.
    """
    global _reactor_used
    if _reactor_used:
        raise RuntimeError(
            "run_crawls() runs once per process (Twisted's reactor cannot restart): "
            "start `python -m crawler.run` in a subprocess for each further crawl"
        )
    config: CrawlConfig = load_sources(options.config_path)
    for name in options.sources:
        config.source(name)  # unknown names fail before anything starts
    for name, url in options.base_urls.items():
        config = config.with_base_url(name, url)

    from db.migrate import upgrade

    upgrade(options.db_url)
    evidence_root = options.evidence_dir or default_evidence_dir()
    if clean_partial_writes(evidence_root):
        logger.info("removed unfinished evidence files left in %s by a killed crawl", evidence_root)
    photo_root = options.photo_dir or photo_dir()
    for folder in (photo_root, photo_root / "thumbs"):  # the same layout one level down: <sha[:2]>/.tmp-*
        if clean_partial_writes(folder):
            logger.info("removed unfinished photo files left in %s by a killed crawl", folder)

    base = Settings()
    base.setmodule("crawler.settings", priority="project")
    base.setdict(options.settings, priority="cmdline")
    process = CrawlerProcess(base)
    tail = _TailHandler(options.sources)
    logging.getLogger().addHandler(tail)

    runs: list[SourceRun] = []
    crawlers: list[tuple[str, Crawler]] = []
    opened: dict[str, LocalRun] = {}
    try:
        with _progress(options.progress, console) as progress:
            for name in options.sources:
                source: SourceConfig = replace(config.source(name), **options.source_overrides.get(name, {}))
                if name == "ebay" and not has_credentials():
                    message = "ebay skipped: set EBAY_CLIENT_ID and EBAY_CLIENT_SECRET to crawl the Browse API"
                    logger.warning(message)
                    now = datetime.now(UTC)
                    runs.append(SourceRun(name, "skipped", now, now, messages=[message]))
                    continue
                full = options.full
                if options.record and options.worker is None:
                    try:
                        opened[name] = open_local_run(options.db_url, name, options.full)
                    except SourceBusy as exc:
                        logger.warning("%s", exc)
                        now = datetime.now(UTC)
                        runs.append(SourceRun(name, "busy", now, now, messages=[str(exc)]))
                        continue
                    full = opened[name].full
                overrides = {**options.settings, **options.per_source_settings.get(name, {})}
                if not options.photos:
                    overrides["KORGWATCH_PHOTOS"] = False
                spider_cls = SPIDERS[name]
                if options.worker is not None:
                    from crawler.distributed.settings import worker_settings
                    from crawler.distributed.worker import worker_spider_class

                    spider_cls = worker_spider_class(spider_cls)
                    worker = worker_settings(
                        options.worker.redis_url,
                        options.worker.name,
                        flush_interval=options.worker.flush_interval,
                        peer_timeout=options.worker.peer_timeout,
                    )
                    overrides = {**worker, **overrides}
                settings = crawl_settings(
                    config,
                    source,
                    db_url=options.db_url,
                    evidence_dir=options.evidence_dir,
                    photo_dir=options.photo_dir,
                    full=full,
                    jobdir=options.jobdir,
                    polite=options.polite,
                    overrides=overrides,
                )
                crawler = Crawler(spider_cls, settings, init_reactor=not crawlers)
                if progress is not None:
                    _watch(crawler, progress, name)
                process.crawl(crawler, source=source)
                crawlers.append((name, crawler))
            if crawlers:
                _reactor_used = True
                process.start(install_signal_handlers=threading_is_main())
    finally:
        logging.getLogger().removeHandler(tail)

    for name, crawler in crawlers:
        stats = crawler.stats.get_stats()
        spider = crawler.spider
        messages = list(getattr(spider, "error_messages", []) or stats.get("korgwatch/error_messages", []))
        run = summarise(name, stats, messages, list(tail.tails.get(name, ())))
        if options.record and options.worker is None:
            local = opened.get(name)
            run.crawl_run_id = record_crawl_run(options.db_url, run, local.id if local else None)
        runs.append(run)
    order = {name: i for i, name in enumerate(options.sources)}
    runs.sort(key=lambda r: order.get(r.source, 0))
    return runs


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def summary_table(runs: Sequence[SourceRun]) -> Table:
    """The end-of-crawl table: one row per source, the columns a reviewer asks about first."""
    table = Table(
        title="Crawl summary",
        caption="listings new/upd/same; instruments new (instr), duplicate sale (dup), repost",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("source", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for header in ("pages", "new", "upd", "same", "instr", "dup", "repost", "flags", "errors"):
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    colours = {
        "ok": "green",
        "degraded": "yellow",
        "failed": "red",
        "timed_out": "red",
        "skipped": "dim",
        "busy": "yellow",
    }
    for run in runs:
        table.add_row(
            run.source,
            f"[{colours.get(run.outcome, 'white')}]{run.outcome}[/]",
            str(run.pages),
            str(run.listings_new),
            str(run.listings_updated),
            str(run.listings_unchanged),
            str(run.instruments_new),
            str(run.duplicate_sales),
            str(run.reposts),
            str(run.flags_raised),
            str(run.errors),
        )
    return table


def photo_summary(runs: Sequence[SourceRun]) -> str | None:
    """One line on the photos of the runs (kept counts those kept earlier and not fetched again), or None."""
    kept = sum(r.photos_kept for r in runs)
    refused = sum(r.photos_refused for r in runs)
    failed = sum(r.photos_failed for r in runs)
    if not kept + refused + failed:
        return None
    return f"Photos: {kept} kept, {refused} refused, {failed} failed (reasons in listing_photos)"


def print_report(runs: Sequence[SourceRun], console: Console) -> None:
    console.print(summary_table(runs))
    photos = photo_summary(runs)
    if photos:
        console.print(photos, highlight=False, markup=False)
    for run in runs:
        if run.outcome == "skipped":
            continue  # already said once, in the log
        for message in run.messages[:10]:
            console.print(f"[dim]{run.source}:[/] {message}", markup=True, highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m crawler.run SOURCE... [--all] [--base-url URL] [--full] [--db URL] [--json PATH]`."""
    parser = argparse.ArgumentParser(prog="python -m crawler.run", description=__doc__)
    parser.add_argument("sources", nargs="*")
    parser.add_argument("--all", action="store_true", help="every enabled source")
    parser.add_argument("--base-url", help="URL for one source, or a root serving each source under /<source>")
    parser.add_argument("--source-url", action="append", default=[], metavar="SOURCE=URL")
    parser.add_argument("--full", action="store_true", help="page to the end instead of stopping at known pages")
    parser.add_argument("--db", help="database URL (default: the data directory's SQLite file)")
    parser.add_argument("--jobdir", type=Path, help="keep the crawl state here so a --full crawl can resume")
    parser.add_argument("--config", type=Path, help="sources file (default: config/sources.yaml)")
    parser.add_argument("--json", type=Path, help="write the runs as JSON here")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a Scrapy setting")
    parser.add_argument("--impolite", action="store_true", help="no delays/robots (benchmarks, test servers)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-photos", action="store_true", help="do not fetch listing photos")
    args = parser.parse_args(argv)

    from db.engine import store_error_message
    from korgwatch.paths import default_db_url

    db_url = args.db or default_db_url()
    try:
        config = load_sources(args.config)
        names = [s.name for s in config.enabled()] if args.all else list(args.sources)
        if not names:
            parser.error("name at least one source, or --all")
        overrides: dict[str, Any] = {}
        for pair in args.set:
            key, _, value = pair.partition("=")
            try:
                overrides[key] = json.loads(value)  # numbers, true/false, lists, objects
            except ValueError:
                overrides[key] = value
        options = CrawlOptions(
            sources=names,
            db_url=db_url,
            base_urls=resolve_base_urls(names, args.base_url, args.source_url),
            full=args.full,
            jobdir=args.jobdir,
            config_path=args.config,
            polite=not args.impolite,
            progress=not args.no_progress,
            photos=not args.no_photos,
            settings=overrides,
        )
        runs = run_crawls(options)
    except (SourcesError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # the store locked, full or gone: one line, not a traceback
        print(store_error_message(db_url, exc), file=sys.stderr)
        return 1
    print_report(runs, Console(stderr=True))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in runs], indent=2), encoding="utf-8")
    return 0 if all(r.outcome in ("ok", "skipped") for r in runs) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
