"""Progress and stopping for long writing commands (`ingest`, `register import`, `dead-letter replay`).

On a terminal a Rich progress bar shows lines, listings per second and errors so far, and a summary line
closes it; when standard output is not a terminal nothing extra is printed, so scripts see only the result.
Ctrl-C asks the work to stop after the batch in flight (a second Ctrl-C stops at once; the batch in flight
is rolled back), and the command exits 130 either way.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


def count_lines(path: str | Path) -> int | None:
    """The number of lines of a regular file (for the bar's length), None for a pipe or a device."""
    path = Path(path)
    if not path.is_file():
        return None
    lines = 0
    last = b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


class WorkProgress:
    """A progress bar for `lines` of input on a terminal; a no-op elsewhere."""

    def __init__(
        self, description: str, total: int | None, console: Console | None = None, unit: str = "listings"
    ) -> None:
        self.console = console or Console()
        self.unit = unit
        self.enabled = self.console.is_terminal
        self.started = time.monotonic()
        self.lines = self.listings = self.errors = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f} lines"),
                TextColumn(f"{{task.fields[rate]:,.0f}} {unit}/s"),
                TextColumn("{task.fields[errors]:,} errors"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task(description, total=total, rate=0.0, errors=0)

    def __enter__(self) -> WorkProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, lines: int, listings: int, errors: int) -> None:
        self.lines, self.listings, self.errors = lines, listings, errors
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=lines, rate=self.rate, errors=errors)

    @property
    def rate(self) -> float:
        return self.listings / max(time.monotonic() - self.started, 1e-6)

    def summary(self, what: str) -> None:
        """The closing line, on a terminal only: "ingest f: 100 lines, 98 listings in 0.1 s (…/s), 2 errors"."""
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        self.console.print(
            f"{what}: {self.lines:,} lines, {self.listings:,} {self.unit} in {elapsed:.1f} s "
            f"({self.rate:,.0f} {self.unit}/s), {self.errors:,} errors",
            highlight=False,
            markup=False,
        )


@contextmanager
def stop_on_interrupt() -> Iterator[threading.Event]:
    """While inside: the first SIGINT sets the event (stop after the batch in flight); the second raises
    KeyboardInterrupt (stop now). The previous handler comes back on the way out."""
    requested = threading.Event()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)
