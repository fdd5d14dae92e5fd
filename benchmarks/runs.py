"""Running a command as a child process and measuring it: wall clock, CPU time and peak memory, and
min/median/max over runs.

Peak memory is what GNU time (/usr/bin/time -f %M) reports of the command: the rusage of a child of this
(large) process would count the memory it shared with it before exec.

Shared by bench_read_commands.py and bench_startup.py.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TIME = "/usr/bin/time"


@dataclass(frozen=True, slots=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    rss_mb: float  # the child's peak resident memory
    code: int
    output: bytes


def run(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, keep: bool = False) -> Run:
    """Run `argv` to its end; its stdout is kept only with `keep` (else read and dropped), stderr is dropped."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as measured:
        started = time.perf_counter()
        child = subprocess.Popen(
            [TIME, "-f", "%M %U %S", "-o", measured.name, *argv],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        assert child.stdout is not None
        kept = bytearray()
        while chunk := child.stdout.read(1 << 16):
            if keep:
                kept += chunk
        code = child.wait()
        wall = time.perf_counter() - started
        last = measured.read().strip().splitlines()[-1]  # GNU time may first say "Command exited with ..."
    rss_kb, user, system = last.split()
    return Run(wall, float(user) + float(system), int(rss_kb) / 1024, code, bytes(kept))


@dataclass
class Series:
    """The runs of one subject."""

    runs: list[Run] = field(default_factory=list)

    def add(self, one: Run) -> Run:
        self.runs.append(one)
        return one

    @staticmethod
    def _three(values: list[float]) -> tuple[float, float, float]:
        return min(values), statistics.median(values), max(values)

    def wall(self) -> tuple[float, float, float]:
        return self._three([r.wall for r in self.runs])

    def cpu(self) -> tuple[float, float, float]:
        return self._three([r.cpu for r in self.runs])

    def rss(self) -> float:
        return max(r.rss_mb for r in self.runs)


def seconds(three: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in three) + " s"
