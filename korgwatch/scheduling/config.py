"""`config/schedule.yaml` as typed objects: when each source is crawled, and how long a crawl may take.

Like the other config files, every problem names the file and the line, and all problems are reported at once.
The scheduler turns each enabled entry into one APScheduler job; `fingerprint()` lets it tell on start whether
an entry changed since the job was stored (changed entries are rescheduled, unchanged ones keep their next run).
With `distributed: true` the jobs enqueue runs for `korgwatch worker`s instead of crawling; the Redis URL stays
out of the file (it may hold a password) and comes from `--redis` or KORGWATCH_REDIS_URL (`redis_url_for()`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

JOB_KEYS = ("enabled", "cron", "interval", "jitter", "timezone", "time_limit", "stop_grace", "misfire_grace_time")
TOP_KEYS = (
    "db",  # the store (read by korgwatch.store for every command, not here)
    "timezone",
    "sample_sites",
    "sample_port",
    "sample_interval",
    "poll",
    "sources_file",
    "log_level",
    "distributed",
    "defaults",
    "sources",
)
JOB_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "cron": None,
    "interval": None,
    "jitter": 0,
    "timezone": None,
    "time_limit": 1800,
    "stop_grace": 60,
    "misfire_grace_time": 600,
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
REDIS_ENV = "KORGWATCH_REDIS_URL"
REDIS_SCHEMES = ("redis", "rediss", "unix")


class ScheduleError(ValueError):
    """The schedule file cannot be used; `problems` lists every one, each naming the file and the line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class JobConfig:
    """One source's schedule: a cron expression or an interval, and the limits its crawls run under (seconds)."""

    source: str
    enabled: bool
    cron: str | None
    interval: float | None
    jitter: float
    timezone: str
    time_limit: float
    stop_grace: float
    misfire_grace_time: float

    def describe(self) -> str:
        """The schedule in the user's words, e.g. `cron 0 */2 * * * (UTC)` or `every 2h`."""
        if self.cron:
            return f"cron {self.cron} ({self.timezone})"
        return f"every {format_duration(self.interval or 0)}"

    def fingerprint(self) -> str:
        """A short hash of what the stored job is built from: a different hash means reschedule."""
        data = {k: v for k, v in asdict(self).items() if k in ("cron", "interval", "jitter", "timezone")}
        data["misfire_grace_time"] = self.misfire_grace_time
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """The whole schedule file. With `sample_sites`, crawls go to the bundled fixture site, never the internet."""

    path: Path | None
    timezone: str = "UTC"
    sample_sites: bool = False
    sample_port: int = 0
    sample_interval: float = 120.0
    poll_seconds: float = 5.0
    sources_file: Path | None = None
    log_level: str = "WARNING"
    distributed: bool = False
    distributed_at: str = ""  # `file:line` of `distributed: true`, for the problems that must point at it
    jobs: tuple[JobConfig, ...] = field(default_factory=tuple)

    def job(self, source: str) -> JobConfig | None:
        return next((j for j in self.jobs if j.source == source), None)

    def enabled(self) -> list[JobConfig]:
        """The jobs to schedule. With `sample_sites`, every enabled source runs every `sample_interval`, unjittered."""
        jobs = [j for j in self.jobs if j.enabled]
        if self.sample_sites:
            jobs = [replace(j, cron=None, interval=self.sample_interval, jitter=0) for j in jobs]
        return jobs


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90s`, `30m`, `6h`, `1d`, `1h30m`; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    if not text or _DURATION.sub("", text):
        raise ValueError(f"expected a duration such as 90s, 30m, 6h or 1d, got {value!r}")
    return float(sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text)))


def format_duration(seconds: float) -> str:
    """`7200` → `2h`, `90` → `1m30s`: the shortest unit string that `parse_duration` reads back."""
    rest = round(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def _cron_weekday(token: str) -> set[int]:
    names = {name: i for i, name in enumerate(_CRON_DAYS)}

    def day(text: str) -> int:
        text = text.strip().lower()[:3]
        if text.isdigit() and 0 <= int(text) <= 7:
            return int(text) % 7
        if text in names:
            return names[text]
        raise ValueError(f"bad day of week {text!r}")

    base, _, step_text = token.partition("/")
    step = int(step_text) if step_text else 1
    if base == "*":
        first, last = 0, 6
    elif "-" in base:
        first_text, last_text = base.split("-", 1)
        first, last = day(first_text), day(last_text)
        if last_text.strip() == "7":
            last = 7
    else:
        first = last = day(base)
        if step_text:
            last = 6
    return {d % 7 for d in range(first, last + 1, step)}


def cron_fields(expr: str) -> dict[str, str]:
    """APScheduler CronTrigger fields from a standard 5-field crontab line.

    APScheduler 3 numbers weekdays from Monday (0) where crontab starts on Sunday (0 or 7); numbers are
    translated to names here so that `0 6 * * 1-5` means weekdays, as it does in crontab.
    """
    values = expr.split()
    if len(values) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day month weekday), got {len(values)}")
    minute, hour, day, month, weekday = values
    if weekday != "*":
        days: set[int] = set()
        for token in weekday.split(","):
            days |= _cron_weekday(token)
        weekday = ",".join(_CRON_DAYS[d] for d in sorted(days))
    return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": weekday}


class _LineLoader(yaml.SafeLoader):
    """Remembers the line of every mapping key, so that problems can name it."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = _LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.line = node.start_mark.line + 1
    mapping.lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return mapping


class _LineDict(dict[str, Any]):
    line: int = 0
    lines: dict[str, int]


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]


def _line_of(mapping: Any, key: str) -> int:
    lines = getattr(mapping, "lines", {})
    return int(lines.get(key, getattr(mapping, "line", 0)))


def _check_zone(name: Any) -> str:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return str(name)


def load_schedule(path: Path | None = None, *, known_sources: tuple[str, ...] | None = None) -> ScheduleConfig:
    """Load and validate the schedule file (default: `config_dir()/schedule.yaml`).

    Raises ScheduleError listing every problem.
    """
    if path is None:
        from korgwatch.paths import config_dir

        path = config_dir() / "schedule.yaml"
    if known_sources is None:
        from crawler.sources import KNOWN_SOURCES

        known_sources = KNOWN_SOURCES
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # a SafeLoader subclass
    except OSError as exc:
        raise ScheduleError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ScheduleError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    raw = raw if raw is not None else _LineDict()
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ScheduleError([f"{path}:1: expected a mapping with `sources:`"])

    def at(mapping: Any, key: str) -> str:
        return f"{path}:{_line_of(mapping, key)}"

    for key in raw:
        if key not in TOP_KEYS:
            problems.append(f"{at(raw, key)}: unknown setting {key!r} (known: {', '.join(TOP_KEYS)})")

    def top(key: str, default: Any, convert: Any) -> Any:
        if key not in raw or raw[key] is None:
            return default
        try:
            return convert(raw[key])
        except (TypeError, ValueError) as exc:
            problems.append(f"{at(raw, key)}: {key}: {exc}")
            return default

    def boolean(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value

    def port(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise ValueError(f"expected a port number (0 = any free port), got {value!r}")
        return value

    def positive(value: Any) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be longer than 0s")
        return seconds

    timezone = top("timezone", "UTC", _check_zone)
    sources_file = top("sources_file", None, lambda v: (path.parent / str(v)).resolve())
    config = ScheduleConfig(
        path=path,
        timezone=timezone,
        sample_sites=top("sample_sites", False, boolean),
        sample_port=top("sample_port", 0, port),
        sample_interval=top("sample_interval", 120.0, positive),
        poll_seconds=top("poll", 5.0, positive),
        sources_file=sources_file,
        log_level=top("log_level", "WARNING", lambda v: str(v).upper()),
        distributed=top("distributed", False, boolean),
        distributed_at=at(raw, "distributed"),
    )
    if config.distributed and sources_file is not None:
        problems.append(
            f"{at(raw, 'sources_file')}: sources_file: not used with `distributed: true`, the workers read their "
            "own (`korgwatch worker --config`); remove it"
        )

    defaults = dict(JOB_DEFAULTS)
    raw_defaults = raw.get("defaults") or {}
    if not isinstance(raw_defaults, dict):
        problems.append(f"{at(raw, 'defaults')}: defaults: expected a mapping")
        raw_defaults = {}
    for key, value in raw_defaults.items():
        if key not in JOB_KEYS or key in ("cron", "interval"):
            allowed = [k for k in JOB_KEYS if k not in ("cron", "interval")]
            problems.append(f"{at(raw_defaults, key)}: defaults: unknown setting {key!r} (known: {', '.join(allowed)})")
        else:
            defaults[key] = value

    raw_sources = raw.get("sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        problems.append(f"{at(raw, 'sources')}: `sources:` must map each source name to its schedule")
        raw_sources = {}
    jobs: list[JobConfig] = []
    for name, entry in raw_sources.items():
        job, job_problems = _load_job(str(name), entry, defaults, timezone, known_sources, at(raw_sources, name))
        problems.extend(job_problems)
        if job is not None:
            jobs.append(job)
    if problems:
        raise ScheduleError(problems)
    return replace(config, jobs=tuple(jobs))


def redis_url_for(
    config: ScheduleConfig, option: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The Redis URL of a distributed schedule (`--redis`, else KORGWATCH_REDIS_URL); None when not distributed.

    Raises ScheduleError naming `distributed: true`'s file and line, or the option, when the URL is missing or
    is not a Redis URL, and when `--redis` is given to a schedule that is not distributed (it would be ignored).
    """
    environ = os.environ if environ is None else environ
    if not config.distributed:
        if option:
            raise ScheduleError([f"--redis: only used with `distributed: true` in {config.path}"])
        return None
    url, where = (option, "--redis") if option else (environ.get(REDIS_ENV), REDIS_ENV)
    if not url:
        raise ScheduleError(
            [f"{config.distributed_at}: distributed: true needs a Redis URL: set {REDIS_ENV} or pass --redis"]
        )
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in REDIS_SCHEMES:
        schemes = ", ".join(f"{scheme}://" for scheme in REDIS_SCHEMES)
        raise ScheduleError([f"{where}: expected a Redis URL ({schemes}), got {redact_url(url)!r}"])
    return url


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at_sign, host = rest.rpartition("@")
    if not sep or not at_sign or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}"


def _load_job(
    name: str,
    entry: Any,
    defaults: dict[str, Any],
    default_zone: str,
    known_sources: tuple[str, ...],
    where: str,
) -> tuple[JobConfig | None, list[str]]:
    problems: list[str] = []
    if name not in known_sources:
        return None, [f"{where}: unknown source {name!r} (known: {', '.join(known_sources)})"]
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        return None, [f"{where}: source {name!r}: expected a mapping of settings"]

    def here(key: str) -> str:
        return f"{where.rsplit(':', 1)[0]}:{_line_of(entry, key)}: source {name!r}"

    for key in entry:
        if key not in JOB_KEYS:
            problems.append(f"{here(key)}: unknown setting {key!r} (known: {', '.join(JOB_KEYS)})")
    values = {**defaults, **{k: v for k, v in entry.items() if k in JOB_KEYS}}
    if values["cron"] and values["interval"]:
        problems.append(f"{here('cron')}: give `cron` or `interval`, not both")
    if not values["cron"] and not values["interval"]:
        problems.append(f"{where}: source {name!r}: give a `cron` expression or an `interval`")

    converted: dict[str, Any] = {}
    checks: dict[str, Any] = {
        "enabled": lambda v: v if isinstance(v, bool) else _fail(f"expected true or false, got {v!r}"),
        "jitter": parse_duration,
        "time_limit": parse_duration,
        "stop_grace": parse_duration,
        "misfire_grace_time": parse_duration,
        "interval": lambda v: None if v is None else parse_duration(v),
        "timezone": lambda v: _check_zone(v or default_zone),
        "cron": lambda v: None if not v else (cron_fields(str(v)) and str(v)),
    }
    for key, check in checks.items():
        try:
            converted[key] = check(values[key])
        except (TypeError, ValueError) as exc:
            problems.append(f"{here(key)}: {key}: {exc}")
    if converted.get("interval") is not None and converted["interval"] <= 0:
        problems.append(f"{here('interval')}: interval: must be longer than 0s")
    if converted.get("time_limit") is not None and converted["time_limit"] <= 0:
        problems.append(f"{here('time_limit')}: time_limit: must be longer than 0s")
    if not problems and converted.get("cron"):
        try:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger(**cron_fields(converted["cron"]), timezone=converted["timezone"])
        except ValueError as exc:
            problems.append(f"{here('cron')}: cron: {exc}")
    if problems:
        return None, problems
    return JobConfig(source=name, **converted), []


def _fail(message: str) -> Any:
    raise ValueError(message)
