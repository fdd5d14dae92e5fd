"""Scheduling commands: `schedule run|list|pause|resume|run-now`, `runs` and `status`.

Thin callers of `korgwatch.scheduling`: the job store edits, run history and health live there. Every command
works on the store every korgwatch command uses (korgwatch.store): `--db`, then KORGWATCH_DB, then `db:` in
schedule.yaml, then the data directory's SQLite file; `runs` and `status` only read an existing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from sqlalchemy import Engine

from db.engine import StoreError
from korgwatch.output import Format, FormatOption, nothing_found, titled_table, write_csv, write_json
from korgwatch.scheduling.config import (
    ScheduleConfig,
    ScheduleError,
    format_duration,
    load_schedule,
    redact_url,
    redis_url_for,
)
from korgwatch.store import DbOption, Store, open_store, resolve_store

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines stay whole, for grep

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Schedule file (default: config/schedule.yaml).")]
RedisOption = Annotated[
    str | None,
    typer.Option(
        "--redis", help="Redis URL, with `distributed: true` (default: KORGWATCH_REDIS_URL).", show_default=False
    ),
]
OUTCOME_COLOURS = {"ok": "green", "degraded": "yellow", "failed": "red", "timed_out": "red", "interrupted": "red"}
HEALTH_COLOURS = {"healthy": "green", "warning": "yellow", "unhealthy": "red", "unknown": "dim"}

schedule_app = typer.Typer(
    name="schedule",
    help="Crawl sources on a schedule (config/schedule.yaml), one process per crawl, or enqueue them for workers.",
    no_args_is_help=True,
    add_completion=False,
)


def _load(config_path: Path | None, db: str | None) -> tuple[ScheduleConfig, Store]:
    try:
        config = load_schedule(config_path)
    except ScheduleError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    try:
        return config, resolve_store(db, config.path)
    except StoreError as exc:
        err_console.print(f"store: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None


def _prepare(store: Store) -> None:
    """The job store lives in the data's store: created or upgraded here, never beside another application's
    tables (`korgwatch db upgrade` adds ours there, after naming them)."""
    try:
        with open_store(store, "write"):
            pass
    except StoreError as exc:
        raise _fail(f"store: {exc}") from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(message, highlight=False, markup=False)
    return typer.Exit(code)


def _redis(config: ScheduleConfig, option: str | None) -> str | None:
    """The Redis URL of a distributed schedule, or None; a missing or misplaced one exits 2 naming where."""
    try:
        return redis_url_for(config, option)
    except ScheduleError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None


def _when(moment: datetime | None, zone: str, now: datetime | None = None) -> str:
    """`2026-11-25 05:12:00 UTC (in 1m52s)`: the schedule's time zone, and how far off."""
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    delta = (moment - now).total_seconds()
    relative = f"in {format_duration(delta)}" if delta >= 0 else f"{format_duration(-delta)} ago"
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S %Z} ({relative})"


@schedule_app.command("run")
def run(
    config_path: ConfigOption = None,
    db: DbOption = None,
    redis: RedisOption = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Scheduler log level.")] = "INFO",
) -> None:
    """Run the scheduler until SIGTERM or Ctrl-C (a second one kills running crawls at once).

    Applies schedule.yaml to the job store first (jobs added, changed, removed); next run times survive restarts.
    With `distributed: true` in schedule.yaml, due runs are enqueued in Redis for `korgwatch worker`s.

    Example: korgwatch schedule run --db sqlite:///korgwatch.sqlite
    """
    from korgwatch.scheduling.service import SchedulerService, configure_logging

    config, store = _load(config_path, db)
    db_url = store.url
    redis_url = _redis(config, redis)
    _prepare(store)
    configure_logging(log_level)
    err_console.print(f"Scheduling from {config.path} into {store.describe()}", highlight=False, markup=False)
    if redis_url:
        err_console.print(f"Distributed: enqueuing runs in {redact_url(redis_url)} for the workers", highlight=False)
    raise typer.Exit(SchedulerService(config, db_url, redis_url=redis_url).run_forever())


@schedule_app.command("list")
def list_(config_path: ConfigOption = None, db: DbOption = None, output: FormatOption = Format.table) -> None:
    """Show each source's job: its schedule, next run and whether it is paused.

    Example: korgwatch schedule list
    """
    from korgwatch.scheduling.jobs import list_jobs

    config, store = _load(config_path, db)
    _prepare(store)
    stored = {info.source: info for info in list_jobs(store.url, config)}
    enabled = {job.source: job for job in config.enabled()}
    rows: list[dict[str, Any]] = []
    for name in [*stored, *(j.source for j in config.jobs if j.source not in stored)]:
        info, entry = stored.get(name), enabled.get(name)
        if info is not None:
            state = "paused" if info.paused else "scheduled"
            if entry is None:
                state += " (removed from schedule.yaml on next start)"
        else:
            state = "added on next `schedule run`" if entry else "disabled"
        described = entry.describe() if entry else (config.job(name).describe() if config.job(name) else "")  # type: ignore[union-attr]
        rows.append(
            {
                "source": name,
                "schedule": described or (info.trigger if info else ""),
                "trigger": info.trigger if info else None,
                "next_run_time": info.next_run_time.isoformat() if info and info.next_run_time else None,
                "state": state,
                "_next": info.next_run_time if info else None,
            }
        )
    plain = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    if output == Format.json:
        write_json(plain)
        return
    if output == Format.csv:
        write_csv(plain, ["source", "schedule", "trigger", "next_run_time", "state"])
        return
    if not rows:
        nothing_found("scheduled crawls", store.describe())
        return
    table = titled_table("Scheduled crawls", store.describe())
    for column in ("source", "schedule", "next run", "state"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["source"], row["schedule"], _when(row["_next"], config.timezone), row["state"])
    console.print(table)
    if config.sample_sites:
        console.print("[dim]sample_sites is on: crawls go to the bundled fixture site, not the internet.[/]")
    if config.distributed:
        console.print("[dim]distributed is on: due runs are enqueued in Redis for `korgwatch worker`s.[/]")


def _edit(action: str, source: str, config_path: Path | None, db: str | None) -> None:
    from korgwatch.scheduling import jobs

    config, store = _load(config_path, db)
    if config.job(source) is None:
        known = ", ".join(job.source for job in config.jobs) or "none"
        raise _fail(f"{source}: no such source in {config.path} (its sources: {known})")
    _prepare(store)
    edit = {"pause": jobs.pause, "resume": jobs.resume, "run-now": jobs.run_now}[action]
    try:
        info = edit(store.url, config, source)
    except (jobs.UnknownJobError, ValueError) as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    poll = format_duration(config.poll_seconds)
    if action == "pause":
        console.print(f"{source}: paused; a running scheduler notices within {poll} (a running crawl goes on).")
    elif action == "resume":
        console.print(f"{source}: resumed, next run {_when(info.next_run_time, config.timezone)}.")
    elif config.distributed:
        console.print(
            f"{source}: due now; a running scheduler enqueues a run of it for the workers within {poll} "
            "(skipped while its previous run is still open)."
        )
    else:
        console.print(
            f"{source}: due now; a running scheduler starts it within {poll} "
            "(skipped if a crawl of it is still running)."
        )


@schedule_app.command("pause")
def pause(
    source: Annotated[str, typer.Argument(help="The source whose job to pause.")],
    config_path: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Stop scheduling a source until `resume` (survives restarts; a running crawl is not interrupted).

    Example: korgwatch schedule pause reverb
    """
    _edit("pause", source, config_path, db)


@schedule_app.command("resume")
def resume(
    source: Annotated[str, typer.Argument(help="The source whose job to resume.")],
    config_path: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Schedule a paused source again from its trigger.

    Example: korgwatch schedule resume reverb
    """
    _edit("resume", source, config_path, db)


@schedule_app.command("run-now")
def run_now(
    source: Annotated[str, typer.Argument(help="The source to crawl now.")],
    config_path: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Make a source's job due now; the running scheduler starts it within `poll` seconds.

    With `distributed: true` the scheduler enqueues a run of it for the workers instead (`korgwatch enqueue`
    does so without a scheduler).

    Example: korgwatch schedule run-now matrixsynth
    """
    _edit("run-now", source, config_path, db)


RUN_COLUMNS = [
    "id", "source", "started_at", "finished_at", "outcome", "pages", "listings_new", "listings_updated",
    "listings_unchanged", "listings_seen", "flags_raised", "errors", "workers", "log_tail",
]  # fmt: skip
STATUS_COLUMNS = [
    "source", "health", "reasons", "open_flags", "job", "next_run_time", "last_run_started_at",
    "last_run_outcome", "last_run_listings_seen",
]  # fmt: skip


@contextmanager
def _reading(store: Store) -> Iterator[Engine]:
    """A read command's store: it must exist with korgwatch's schema (never created by `runs` or `status`)."""
    try:
        with open_store(store, "read") as engine:
            yield engine
    except StoreError as exc:
        raise _fail(f"store: {exc}") from None


def _workers_text(workers: Any) -> str:
    return ", ".join(f"{name}: {pages}" for name, pages in workers)


def _status_row(row: dict[str, Any]) -> dict[str, Any]:
    last = row.get("last_run") or {}
    flat = {k: v for k, v in row.items() if k != "last_run"}
    flat["reasons"] = "; ".join(row["reasons"])
    flat["last_run_started_at"] = last.get("started_at")
    flat["last_run_outcome"] = last.get("outcome")
    flat["last_run_listings_seen"] = last.get("listings_seen")
    return flat


def runs(
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs, newest first.")] = 20,
    output: FormatOption = Format.table,
    config_path: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """List crawl runs, newest first: outcome, pages, listings, flags, errors and why a run failed.

    Example: korgwatch runs --source reverb --limit 5 --format json
    """
    from db.engine import read_scope
    from korgwatch.scheduling.history import recent_runs

    config, store = _load(config_path, db)
    with _reading(store) as engine, read_scope(engine) as session:
        rows = recent_runs(session, source, limit)
    if output == Format.json:
        write_json([row.to_dict() for row in rows])
        return
    if output == Format.csv:
        flat = [{**row.to_dict(), "workers": _workers_text(row.workers)} for row in rows]
        write_csv(flat, RUN_COLUMNS)
        return
    if not rows:
        nothing_found("crawl runs", store.describe())
        return
    table = titled_table("Crawl runs", store.describe())
    for column in ("id", "source", "started", "took", "outcome"):
        table.add_column(column, no_wrap=True)
    for column in ("pages", "new", "upd", "same", "flags", "errors"):
        table.add_column(column, justify="right")
    table.add_column("note")
    for row in rows:
        took = format_duration((row.finished_at - row.started_at).total_seconds()) if row.finished_at else "-"
        note = (row.log_tail or "").strip().splitlines()[0][:80] if row.outcome != "ok" and row.log_tail else ""
        if row.workers:  # a distributed run: the pages each worker fetched
            note = ", ".join(f"{name}: {pages}" for name, pages in row.workers) + (f"; {note}" if note else "")
        colour = OUTCOME_COLOURS.get(row.outcome or "", "white")
        table.add_row(
            str(row.id),
            row.source,
            f"{row.started_at.astimezone(ZoneInfo(config.timezone)):%Y-%m-%d %H:%M:%S}",
            took,
            f"[{colour}]{row.outcome or 'running'}[/]",
            str(row.pages),
            str(row.listings_new),
            str(row.listings_updated),
            "-" if row.listings_unchanged is None else str(row.listings_unchanged),
            str(row.flags_raised),
            str(row.errors),
            note,
        )
    console.print(table)


def status(output: FormatOption = Format.table, config_path: ConfigOption = None, db: DbOption = None) -> None:
    """Per source: the last run, health, the review queue (open flags) and the next scheduled run.

    Unhealthy: the last three runs failed or timed out, or the last run saw under a quarter of the listings
    the source usually shows (the site's layout changed?).

    Example: korgwatch status
    """
    from db.engine import read_scope
    from korgwatch.scheduling import history
    from korgwatch.scheduling.jobs import list_jobs

    config, store = _load(config_path, db)
    with _reading(store) as engine:
        stored = {info.source: info for info in list_jobs(store.url, config)}
        with read_scope(engine) as session:
            flags = history.open_flags_by_source(session)
            names = [j.source for j in config.jobs if j.enabled or j.source in stored]
            names += [n for n in [*stored, *history.source_names(session)] if n not in names]
            report: list[dict[str, Any]] = []
            for name in names:
                recent = history.recent_runs(session, name, history.HISTORY_WINDOW + 1)
                verdict = history.health(recent)
                info = stored.get(name)
                report.append(
                    {
                        "source": name,
                        "last_run": recent[0].to_dict() if recent else None,
                        "health": verdict.state,
                        "reasons": list(verdict.reasons),
                        "open_flags": flags.get(name, 0),
                        "next_run_time": info.next_run_time.isoformat() if info and info.next_run_time else None,
                        "job": ("paused" if info.paused else "scheduled") if info else "none",
                        "_last": recent[0] if recent else None,
                        "_next": info.next_run_time if info else None,
                    }
                )
    plain = [{k: v for k, v in r.items() if not k.startswith("_")} for r in report]
    if output == Format.json:
        write_json(plain)
        return
    if output == Format.csv:
        write_csv([_status_row(r) for r in plain], STATUS_COLUMNS)
        return
    if not report:
        nothing_found("korgwatch status", store.describe())
        return
    table = titled_table("korgwatch status", store.describe())
    for column in ("source", "last run", "outcome", "seen", "health", "why", "open flags", "next run"):
        table.add_column(column, justify="right" if column in ("seen", "open flags") else "left")
    for row in report:
        last = row["_last"]
        colour = HEALTH_COLOURS[row["health"]]
        table.add_row(
            row["source"],
            _when(last.started_at, config.timezone) if last else "-",
            f"[{OUTCOME_COLOURS.get(last.outcome or '', 'white')}]{last.outcome}[/]" if last else "-",
            str(last.listings_seen) if last else "-",
            f"[{colour}]{row['health']}[/]",
            "; ".join(row["reasons"]),
            str(row["open_flags"]),
            "paused" if row["job"] == "paused" else _when(row["_next"], config.timezone),
        )
    console.print(table)
    console.print(f"Review queue: {sum(flags.values())} open flags.", highlight=False)
    _notification_health(store.url)


def _notification_health(db_url: str) -> None:
    """Targets with messages waiting or failing (issue 16); `korgwatch notify list --failing` has the detail."""
    from db.engine import make_engine, read_scope
    from korgwatch.notify.status import print_notification_health

    engine = make_engine(db_url)
    try:
        with read_scope(engine) as session:
            print_notification_health(session, console)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    """Add the `schedule` group and the `runs` and `status` commands to the korgwatch command line."""
    app.add_typer(schedule_app, name="schedule")
    app.command("runs")(runs)
    app.command("status")(status)


def _standalone() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, add_completion=False)
    register(app)
    return app


if __name__ == "__main__":  # `python -m korgwatch.commands.schedule schedule run` before cli.py wires it in
    _standalone()()
