"""`korgwatch notify test|list|run`: the notifications of config/notify.yaml (docs/notify.md).

Thin callers of korgwatch.notify and db.notifications. Target URLs are shown as written in the file, with
`${NAME}` in place of secrets, never their values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from korgwatch.notify.config import NotifyConfig, NotifyConfigError, load_notify
from korgwatch.output import Format, FormatOption, emit
from korgwatch.store import DbOption, Mode, open_store, resolve_store

notify_app = typer.Typer(
    help="Alerts through Apprise (config/notify.yaml): test a target, list deliveries, send.", no_args_is_help=True
)

NotifyConfigOption = Annotated[
    Path | None,
    typer.Option("--notify-config", help="Notify file (default: KORGWATCH_NOTIFY_CONFIG or config/notify.yaml)."),
]
LIST_COLUMNS = ("id", "created", "target", "kind", "title", "status", "attempts", "delivered", "next_try", "error")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)  # one line, never wrapped: scripts and tests read it
    return typer.Exit(code)


def load_config(path: Path | None) -> NotifyConfig:
    """The notify file, or every problem in it (file:line) and exit status 2."""
    try:
        return load_notify(path)
    except NotifyConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None


@contextmanager
def store(db: str | None, mode: Mode = "write") -> Iterator[Engine]:
    """The store, opened by the rules every command follows (korgwatch/store.py): a reading command never
    creates one; a store failure is one line and exit status 2."""
    from db.engine import StoreError, store_error_message

    resolved = resolve_store(db)
    try:
        with open_store(resolved, mode) as engine:
            yield engine
    except StoreError as exc:
        raise fail(f"store: {exc}", 2) from None
    except SQLAlchemyError as exc:
        raise fail(store_error_message(resolved.url, exc), 2) from None


@notify_app.command("test")
def notify_test(
    target: Annotated[str, typer.Argument(help="A target's name in notify.yaml (see `notify list-targets`).")],
    notify_config: NotifyConfigOption = None,
) -> None:
    """Send a test message to one target now (not queued, not recorded).

    Example: korgwatch notify test phone
    """
    from korgwatch.notify.sender import deliver

    config = load_config(notify_config)
    chosen = config.target(target)
    if chosen is None:
        known = ", ".join(t.name for t in config.targets) or "none"
        raise fail(f"error: {config.path or 'notify.yaml'}: no target named {target!r} (targets: {known})", 2)
    error = deliver(chosen, "korgwatch: test message", f"A test message from korgwatch to {chosen.name}.")
    if error:
        raise fail(f"error: {error}", 1)
    typer.echo(f"sent a test message to {chosen.name} ({chosen.shown})")


@notify_app.command("targets")
def notify_targets(notify_config: NotifyConfigOption = None, fmt: FormatOption = Format.table) -> None:
    """The targets of the notify file, as written (secrets as ${NAME}).

    Example: korgwatch notify targets
    """
    config = load_config(notify_config)
    rows = [{"name": t.name, "url": t.shown, "secrets": list(t.secrets)} for t in config.targets]
    emit(rows, fmt.value, ("name", "url", "secrets"), title=f"targets ({config.path})")


@notify_app.command("list")
def notify_list(
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    limit: Annotated[int, typer.Option(min=1, help="How many of the newest messages.")] = 50,
    failing: Annotated[
        bool, typer.Option("--failing", help="Only messages not yet delivered after a failure.")
    ] = False,
) -> None:
    """Recent messages: delivered, pending, and failing with their last error and next try.

    Example: korgwatch notify list -f json
    """
    from db.engine import read_scope
    from db.notifications import recent

    with store(db, "read") as engine, read_scope(engine) as session:
        rows = [
            {
                "id": n.id,
                "created": n.created_at.isoformat(timespec="seconds"),
                "target": n.target,
                "kind": n.kind,
                "title": n.title,
                "status": n.status if n.status == "delivered" or not n.attempts else "failing",
                "attempts": n.attempts,
                "delivered": n.delivered_at.isoformat(timespec="seconds") if n.delivered_at else None,
                "next_try": n.next_attempt_at.isoformat(timespec="seconds") if n.status == "pending" else None,
                "error": n.last_error,
            }
            for n in recent(session, limit)
            if not failing or (n.status == "pending" and n.attempts)
        ]
    emit(rows, fmt.value, LIST_COLUMNS, title="notifications")


@notify_app.command("run")
def notify_run(
    db: DbOption = None,
    notify_config: NotifyConfigOption = None,
    every: Annotated[
        float | None, typer.Option(help="Keep running: collect and send every this many seconds.", min=0.1)
    ] = None,
) -> None:
    """Collect new events from the store and send what is due (the scheduler does this after each run).

    Example: korgwatch notify run --every 60
    """
    from korgwatch.notify.sender import notify_once

    config = load_config(notify_config)
    if not config.targets:
        typer.echo(f"no targets in {config.path or 'config/notify.yaml'}: nothing to send")
        return
    with store(db) as engine:
        while True:
            queued, report = notify_once(engine, config)
            typer.echo(f"queued {queued}, delivered {report.delivered}, failed {report.failed}")
            for error in report.errors:
                typer.echo(f"warning: {error}", err=True)
            if every is None:
                break
            time.sleep(every)


def register(app: typer.Typer) -> None:
    """Add the `notify` group to the korgwatch command line."""
    app.add_typer(notify_app, name="notify")
