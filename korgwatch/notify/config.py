"""`config/notify.yaml` as typed objects: where messages go, and which events go there.

Like the other config files, every problem names the file and the line, and all are reported at once. Secrets
never live in the YAML: a target URL names environment variables as `${NAME}`, filled in only when a message is
sent (`Target.resolve()`), and everything shown or logged uses the URL as written (`Target.shown`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

NOTIFY_CONFIG_ENV = "KORGWATCH_NOTIFY_CONFIG"
EVENT_KINDS = (
    "new_sighting",
    "flag_opened",
    "duplicate_sale",
    "repost",
    "watch_hit",
    "crawl_degraded",
    "crawl_failed",
    "review_backlog",
)
DIGEST_KINDS = ("new_sighting", "flag_opened", "duplicate_sale", "repost")  # watch_hit is always sent at once
TOP_KEYS = ("targets", "rules", "review_backlog", "public_base_url", "public_feeds", "retry")
PUBLIC_FEEDS = ("sightings", "models")  # the review queue feed always needs the page's token off loopback
TARGET_KEYS = ("name", "url")
RULE_KEYS = ("events", "targets", "models", "sources", "flags", "price_min", "price_max", "digest", "every")
DIGEST_MODES = ("run", "interval", "none")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class NotifyConfigError(ValueError):
    """The notify file cannot be used; `problems` lists every one, each naming the file and the line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class MissingSecret(LookupError):
    """A target URL names an environment variable that is not set."""


@dataclass(frozen=True, slots=True)
class Target:
    """One Apprise URL, as written: `${NAME}` parts are environment variables read at send time."""

    name: str
    url: str
    where: str = ""

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(_ENV_REF.findall(self.url))

    @property
    def shown(self) -> str:
        """The URL as written in the file (secrets still `${NAME}`): safe to print and log."""
        return self.url

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL to send to, secrets filled in; raises MissingSecret naming the variable."""
        env = os.environ if environ is None else environ

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise MissingSecret(f"target {self.name}: environment variable {name} is not set ({self.where})")
            return env[name]

        return _ENV_REF.sub(fill, self.url)

    def redact(self, text: str, environ: Mapping[str, str] | None = None) -> str:
        """`text` with every secret value this target uses replaced by `${NAME}` (errors quote URLs)."""
        env = os.environ if environ is None else environ
        for name in self.secrets:
            value = env.get(name)
            if value:
                text = text.replace(value, "${" + name + "}")
        return text


@dataclass(frozen=True, slots=True)
class Rule:
    """Which events go to which targets; an empty filter lets everything through."""

    events: tuple[str, ...]
    targets: tuple[str, ...] = ()  # empty: every target
    models: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    digest: str = "run"
    every: float | None = None  # seconds between two digests of `digest: interval`

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether an event (kind, model, source, flag, price) passes this rule's filters."""
        if event["kind"] not in self.events:
            return False
        if self.models and event.get("model") not in self.models:
            return False
        if self.sources and event.get("source") not in self.sources:
            return False
        if self.flags and event.get("flag") not in self.flags:
            return False
        price = event.get("price")
        if self.price_min is not None and (price is None or Decimal(str(price)) < self.price_min):
            return False
        return not (self.price_max is not None and (price is None or Decimal(str(price)) > self.price_max))


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """The whole notify file; an empty one (no targets) sends nothing."""

    path: Path | None
    targets: tuple[Target, ...] = ()
    rules: tuple[Rule, ...] = ()
    review_backlog: int | None = None
    public_base_url: str | None = None
    public_feeds: tuple[str, ...] = ()
    retry_base: float = 30.0
    retry_max: float = 3600.0
    by_name: dict[str, Target] = field(default_factory=dict)

    def target(self, name: str) -> Target | None:
        return self.by_name.get(name)

    def routes(self, event: Mapping[str, Any]) -> dict[str, str]:
        """Target name -> how the event reaches it: "run" (in its run's digest), "interval" (in the target's
        digest every `every`) or "none" (a message of its own, which wins when rules disagree)."""
        chosen: dict[str, str] = {}
        for rule in self.rules:
            if not rule.matches(event):
                continue
            mode = rule.digest if event["kind"] in DIGEST_KINDS else "none"
            for name in rule.targets or tuple(self.by_name):
                chosen[name] = mode if chosen.get(name, mode) == mode else "none"
        return chosen

    def interval(self, target: str) -> float | None:
        """The shortest `every` of the interval-digest rules that reach `target`, in seconds."""
        spans = [r.every for r in self.rules if r.digest == "interval" and r.every
                 and (not r.targets or target in r.targets)]
        return min(spans) if spans else None


def _duration(value: Any) -> float:
    """`every:` as seconds: a number of seconds, or "30m", "1h", "1d"."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return float(value)
    found = _DURATION.match(str(value))
    if not found or int(found[1]) == 0:
        raise ValueError(f"expected a duration such as 30m, 1h or 1d, got {value!r}")
    return float(int(found[1]) * _SECONDS[found[2]])


def notify_config_path() -> Path:
    """KORGWATCH_NOTIFY_CONFIG if set, else notify.yaml in the config directory (KORGWATCH_CONFIG moves that)."""
    override = os.environ.get(NOTIFY_CONFIG_ENV)
    if override:
        return Path(override)
    from korgwatch.paths import config_dir

    return config_dir() / "notify.yaml"


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings remember the line of each key (for messages naming the line)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = _LineDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        mapping[key] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
        mapping.lines[key] = key_node.start_mark.line + 1
    mapping.line = node.start_mark.line + 1
    return mapping


class _LineDict(dict[Any, Any]):
    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}
        self.line = 1


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line(mapping: Any, key: str | None = None) -> int:
    if isinstance(mapping, _LineDict):
        return mapping.lines.get(key, mapping.line) if key is not None else mapping.line
    return 1


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError(f"expected a name or a list of names, got {value!r}")


def _price(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None


def _seconds(value: Any) -> float:
    from korgwatch.scheduling.config import parse_duration

    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def load_notify(path: Path | None = None) -> NotifyConfig:
    """Load and validate the notify file (default: `notify_config_path()`); a missing default file sends nothing.

    Raises NotifyConfigError listing every problem, each with the file and line.
    """
    explicit = path is not None or bool(os.environ.get(NOTIFY_CONFIG_ENV))
    path = path or notify_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise NotifyConfigError([f"{path}: cannot read: no such file"]) from None
        return NotifyConfig(path=None)
    except OSError as exc:
        raise NotifyConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        raw = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise NotifyConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if raw is None:
        return NotifyConfig(path=path)
    if not isinstance(raw, dict):
        raise NotifyConfigError([f"{path}:1: expected a mapping with `targets:` and `rules:`"])
    problems: list[str] = []

    def at(mapping: Any, key: str | None = None) -> str:
        return f"{path}:{_line(mapping, key)}"

    for key in raw:
        if key not in TOP_KEYS:
            problems.append(f"{at(raw, key)}: unknown setting {key!r} (known: {', '.join(TOP_KEYS)})")

    targets: list[Target] = []
    raw_targets = raw.get("targets") or []
    if not isinstance(raw_targets, list):
        problems.append(f"{at(raw, 'targets')}: targets: expected a list of `- url: …` entries")
        raw_targets = []
    for index, entry in enumerate(raw_targets, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not entry["url"].strip():
            problems.append(f"{at(raw, 'targets')}: targets[{index}]: expected `url: <an Apprise URL>`")
            continue
        for key in entry:
            if key not in TARGET_KEYS:
                problems.append(f"{at(entry, key)}: targets[{index}]: unknown setting {key!r} (known: name, url)")
        url = entry["url"].strip()
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            problems.append(f"{at(entry, 'url')}: targets[{index}]: {url!r} is not an Apprise URL (scheme://…)")
            continue
        name = str(entry.get("name") or f"{scheme}-{index}")
        if any(t.name == name for t in targets):
            problems.append(f"{at(entry)}: targets[{index}]: name {name!r} used twice")
            continue
        targets.append(Target(name=name, url=url, where=at(entry, "url")))
    by_name = {t.name: t for t in targets}

    rules: list[Rule] = []
    raw_rules = raw.get("rules")
    if raw_rules is None:
        raw_rules = [{"events": list(EVENT_KINDS)}] if targets else []
    if not isinstance(raw_rules, list):
        problems.append(f"{at(raw, 'rules')}: rules: expected a list of rules")
        raw_rules = []
    for index, entry in enumerate(raw_rules, 1):
        here = f"rules[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{at(raw, 'rules')}: {here}: expected a mapping with `events:`")
            continue
        values: dict[str, Any] = {}
        for key, value in entry.items():
            try:
                if key not in RULE_KEYS:
                    raise ValueError(f"unknown setting {key!r} (known: {', '.join(RULE_KEYS)})")
                if key in ("price_min", "price_max"):
                    values[key] = _price(value)
                elif key == "digest":
                    if value not in DIGEST_MODES:
                        raise ValueError(f"expected one of {', '.join(DIGEST_MODES)}, got {value!r}")
                    values[key] = value
                elif key == "every":
                    values[key] = _duration(value)
                else:
                    values[key] = _names(value)
            except ValueError as exc:
                problems.append(f"{at(entry, key)}: {here}: {key}: {exc}")
        events = values.get("events")
        if not events:
            problems.append(f"{at(entry)}: {here}: `events:` is required (known: {', '.join(EVENT_KINDS)})")
            continue
        unknown = [e for e in events if e not in EVENT_KINDS]
        if unknown:
            problems.append(
                f"{at(entry, 'events')}: {here}: unknown event {unknown[0]!r} (known: {', '.join(EVENT_KINDS)})"
            )
        missing = [t for t in values.get("targets", ()) if t not in by_name]
        if missing:
            problems.append(f"{at(entry, 'targets')}: {here}: no target named {missing[0]!r}")
        if values.get("digest") == "interval" and not values.get("every"):
            problems.append(f"{at(entry, 'digest')}: {here}: `digest: interval` needs `every:` (e.g. 1h, 30m, 1d)")
            continue
        rules.append(Rule(**values))

    backlog = raw.get("review_backlog")
    if backlog is not None and (not isinstance(backlog, int) or isinstance(backlog, bool) or backlog < 1):
        problems.append(f"{at(raw, 'review_backlog')}: review_backlog: expected a number of open flags ≥ 1")
        backlog = None
    base = raw.get("public_base_url")
    if base is not None and (not isinstance(base, str) or not re.match(r"https?://", base)):
        problems.append(f"{at(raw, 'public_base_url')}: public_base_url: expected an http(s):// URL")
        base = None
    public_feeds: tuple[str, ...] = ()
    if raw.get("public_feeds") is not None:
        try:
            public_feeds = _names(raw["public_feeds"])
            wrong = [f for f in public_feeds if f not in PUBLIC_FEEDS]
            if wrong:
                raise ValueError(f"{wrong[0]!r} cannot be public (public feeds: {', '.join(PUBLIC_FEEDS)})")
        except ValueError as exc:
            problems.append(f"{at(raw, 'public_feeds')}: public_feeds: {exc}")
            public_feeds = ()
    retry_base, retry_max = 30.0, 3600.0
    retry = raw.get("retry") or {}
    if not isinstance(retry, dict):
        problems.append(f"{at(raw, 'retry')}: retry: expected `first:` and `max:` durations")
        retry = {}
    for key, value in retry.items():
        try:
            if key == "first":
                retry_base = _seconds(value)
            elif key == "max":
                retry_max = _seconds(value)
            else:
                raise ValueError(f"unknown setting {key!r} (known: first, max)")
        except ValueError as exc:
            problems.append(f"{at(retry, key)}: retry: {key}: {exc}")
    if problems:
        raise NotifyConfigError(problems)
    return NotifyConfig(
        path=path,
        targets=tuple(targets),
        rules=tuple(rules),
        review_backlog=backlog,
        public_base_url=base.rstrip("/") if base else None,
        public_feeds=public_feeds,
        retry_base=retry_base,
        retry_max=retry_max,
        by_name=by_name,
    )
