"""Scheduling commands: `schedule run|list|pause|resume|run-now`, `runs` and `status`.

Thin callers of `korgwatch.scheduling`: the job store edits, run history and health live there. Every command
works on the schedule's database: `--db`, else the sample database when schedule.yaml has `sample_sites` (and
not `distributed`), else KORGWATCH_DB or the data directory's SQLite file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from korgwatch.scheduling.config import (
    ScheduleConfig,
    ScheduleError,
    format_duration,
    load_schedule,
    redact_url,
    redis_url_for,
)

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Schedule file (default: config/schedule.yaml).")]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: the sample database with sample_sites, else KORGWATCH_DB)."),
]
FormatOption = Annotated[str, typer.Option("--format", help="table or json.")]
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


def _load(config_path: Path | None, db: str | None) -> tuple[ScheduleConfig, str]:
    from korgwatch.scheduling.service import resolve_db_url

    try:
        config = load_schedule(config_path)
    except ScheduleError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    return config, resolve_db_url(config, db)


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


def _check_format(value: str) -> str:
    if value not in ("table", "json"):
        err_console.print(f"[red]--format must be table or json, not {value!r}[/]", highlight=False)
        raise typer.Exit(2)
    return value


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

    config, db_url = _load(config_path, db)
    redis_url = _redis(config, redis)
    configure_logging(log_level)
    err_console.print(f"Scheduling from {config.path} into {db_url}", highlight=False)
    if redis_url:
        err_console.print(f"Distributed: enqueuing runs in {redact_url(redis_url)} for the workers", highlight=False)
    raise typer.Exit(SchedulerService(config, db_url, redis_url=redis_url).run_forever())


@schedule_app.command("list")
def list_(config_path: ConfigOption = None, db: DbOption = None, output: FormatOption = "table") -> None:
    """Show each source's job: its schedule, next run and whether it is paused.

    Example: korgwatch schedule list
    """
    from korgwatch.scheduling.jobs import list_jobs

    _check_format(output)
    config, db_url = _load(config_path, db)
    stored = {info.source: info for info in list_jobs(db_url, config)}
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
    if output == "json":
        print(json.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], indent=2))
        return
    table = Table(title=f"Scheduled crawls ({db_url})")
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

    config, db_url = _load(config_path, db)
    edit = {"pause": jobs.pause, "resume": jobs.resume, "run-now": jobs.run_now}[action]
    try:
        info = edit(db_url, config, source)
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


def runs(
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs, newest first.")] = 20,
    output: FormatOption = "table",
    config_path: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """List crawl runs, newest first: outcome, pages, listings, flags, errors and why a run failed.

    Example: korgwatch runs --source reverb --limit 5 --format json
    """
    from db.engine import make_engine, read_scope
    from db.migrate import upgrade
    from korgwatch.scheduling.history import recent_runs

    _check_format(output)
    config, db_url = _load(config_path, db)
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with read_scope(engine) as session:
            rows = recent_runs(session, source, limit)
    finally:
        engine.dispose()
    if output == "json":
        print(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    table = Table(title=f"Crawl runs ({db_url})")
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


def status(output: FormatOption = "table", config_path: ConfigOption = None, db: DbOption = None) -> None:
    """Per source: the last run, health, the review queue (open flags) and the next scheduled run.

    Unhealthy: the last three runs failed or timed out, or the last run saw under a quarter of the listings
    the source usually shows (the site's layout changed?).

    Example: korgwatch status
    """
    from db.engine import make_engine, read_scope
    from db.migrate import upgrade
    from korgwatch.scheduling import history
    from korgwatch.scheduling.jobs import list_jobs

    _check_format(output)
    config, db_url = _load(config_path, db)
    upgrade(db_url)
    stored = {info.source: info for info in list_jobs(db_url, config)}
    engine = make_engine(db_url)
    try:
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
    finally:
        engine.dispose()
    if output == "json":
        print(json.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in report], indent=2))
        return
    table = Table(title=f"korgwatch status ({db_url})")
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
    _notification_health(db_url)


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
