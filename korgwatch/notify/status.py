"""The notification lines of `korgwatch status`: per target, what waits, what fails and why (secrets redacted)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from db.notifications import target_health


def print_notification_health(session: Session, console: Console) -> None:
    """A table of targets with messages waiting or failing; one line when all is delivered; nothing when unused."""
    health = target_health(session)
    if not health:
        return
    waiting = [h for h in health if h.pending]
    if not waiting:
        delivered = sum(h.delivered for h in health)
        console.print(f"Notifications: {delivered} delivered, none waiting.", highlight=False)
        return
    table = Table(title="Notifications waiting")
    for column in ("target", "waiting", "failing", "next try", "last error"):
        table.add_column(column)
    for h in waiting:
        table.add_row(
            h.target,
            str(h.pending),
            f"[red]{h.failing}[/]" if h.failing else "0",
            h.next_attempt_at.isoformat(timespec="seconds") if h.next_attempt_at else "-",
            h.last_error or "",
            style=None,
        )
    console.print(table)
