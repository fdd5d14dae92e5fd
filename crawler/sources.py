"""`config/sources.yaml` as typed objects: the crawl's politeness and queries are data, not code.

Every problem names the file and the line (and the source), and all problems are reported at once, so a user
fixing the file does not have to run the crawler once per typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

KNOWN_SOURCES = ("matrixsynth", "reverb", "ebay", "yahoo_auctions", "jsonld")

_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "base_url": "",
    "feeds": [],
    "queries": [],
    "pages": [],
    "delay": 2.0,
    "page_limit": 10,
    "page_size": 50,
    "timeout": 900.0,
    "min_items": 1,
    "date_sorted": True,
    "fetch_details": False,
    "marketplace": None,
    "photos": None,  # the file's `photos:` defaults; `false`, `true` or a mapping of limits to change
}
_TYPES: dict[str, tuple[type, ...]] = {
    "enabled": (bool,),
    "base_url": (str,),
    "feeds": (list,),
    "queries": (list,),
    "pages": (list,),
    "delay": (int, float),
    "page_limit": (int,),
    "page_size": (int,),
    "timeout": (int, float),
    "min_items": (int,),
    "date_sorted": (bool,),
    "fetch_details": (bool,),
    "marketplace": (str, type(None)),
    "photos": (bool, dict),
}


#: What a photo may be, by Pillow's format name; "gif" keeps the first frame of an animation.
PHOTO_TYPES = ("jpeg", "png", "webp", "gif")
#: Pillow's own decompression-bomb limit (Image.MAX_IMAGE_PIXELS): a photo with more pixels is refused.
PILLOW_MAX_PIXELS = 89_478_485


@dataclass(frozen=True, slots=True)
class PhotoLimits:
    """What the crawl keeps of a listing's photos: at most `per_listing`, each at most `max_bytes` and
    `max_pixels`, of the `types` given; `enabled=False` fetches none."""

    enabled: bool = True
    per_listing: int = 12
    max_bytes: int = 8 * 1024 * 1024
    types: tuple[str, ...] = PHOTO_TYPES
    max_pixels: int = PILLOW_MAX_PIXELS


_PHOTO_KEYS = ("enabled", "per_listing", "max_bytes", "types", "max_pixels")


def load_photo_limits(node: yaml.Node, base: PhotoLimits, where: str, owner: str, problems: list[str]) -> PhotoLimits:
    """`photos:` as `true`/`false` or a mapping of limits over `base`; every problem names file, line and key.

    `owner` prefixes the key in messages ("source 'reverb': " for a source's own switch, "" for the defaults).
    """
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":bool"):
        return replace(base, enabled=bool(yaml.safe_load(yaml.serialize(node))))
    if not isinstance(node, yaml.MappingNode):
        problems.append(f"{where}:{line}: {owner}photos must be true, false or a mapping of {', '.join(_PHOTO_KEYS)}")
        return base
    limits = base
    for key_node, value_node in node.value:
        key = key_node.value
        at = f"{where}:{key_node.start_mark.line + 1}: {owner}photos.{key}"
        value: Any = yaml.safe_load(yaml.serialize(value_node))
        least = 0 if key == "per_listing" else 1
        if key not in _PHOTO_KEYS:
            problems.append(f"{at}: unknown setting (known: {', '.join(_PHOTO_KEYS)})")
        elif key == "enabled":
            if isinstance(value, bool):
                limits = replace(limits, enabled=value)
            else:
                problems.append(f"{at}: must be true or false, not {value!r}")
        elif key == "types":
            wanted = [str(v).strip().lower() for v in value] if isinstance(value, list) else []
            unknown = sorted(set(wanted) - set(PHOTO_TYPES))
            if wanted and not unknown:
                limits = replace(limits, types=tuple(dict.fromkeys(wanted)))
            else:
                extra = f" (unknown: {', '.join(unknown)})" if unknown else ""
                problems.append(f"{at}: must be a non-empty list of {', '.join(PHOTO_TYPES)}{extra}")
        elif not isinstance(value, int) or isinstance(value, bool) or value < least:
            problems.append(f"{at}: must be a whole number of at least {least}, not {value!r}")
        elif key == "max_pixels" and value > PILLOW_MAX_PIXELS:
            problems.append(f"{at}: must not exceed Pillow's decompression-bomb limit ({PILLOW_MAX_PIXELS})")
        elif key == "per_listing":
            limits = replace(limits, per_listing=value)
        elif key == "max_bytes":
            limits = replace(limits, max_bytes=value)
        else:
            limits = replace(limits, max_pixels=value)
    return limits


class SourcesError(ValueError):
    """The sources file cannot be used; `problems` lists every one, each naming file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One source's crawl settings; `base_url` is where every request of the source is built."""

    name: str
    enabled: bool = True
    base_url: str = ""
    feeds: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    delay: float = 2.0
    page_limit: int = 10
    page_size: int = 50
    timeout: float = 900.0
    min_items: int = 1
    date_sorted: bool = True
    fetch_details: bool = False
    marketplace: str | None = None
    photos: PhotoLimits = field(default_factory=lambda: PhotoLimits())


@dataclass(frozen=True, slots=True)
class CrawlConfig:
    """All sources plus the contact URL that goes into the User-Agent."""

    contact_url: str
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    path: str = ""
    photos: PhotoLimits = field(default_factory=lambda: PhotoLimits())

    def enabled(self) -> list[SourceConfig]:
        return [s for s in self.sources.values() if s.enabled]

    def source(self, name: str) -> SourceConfig:
        try:
            return self.sources[name]
        except KeyError:
            raise SourcesError([f"{self.path}: unknown source {name!r} (known: {', '.join(self.sources)})"]) from None

    def with_base_url(self, name: str, base_url: str) -> CrawlConfig:
        """The same config with one source moved to `base_url` (a test server, the demo site)."""
        sources = dict(self.sources)
        sources[name] = replace(self.source(name), base_url=base_url.rstrip("/"))
        return replace(self, sources=sources)


def _has_type(value: Any, key: str) -> bool:
    """YAML's type for a setting is right (a bool is not taken for a number)."""
    wanted = _TYPES[key]
    return isinstance(value, wanted) and (bool in wanted or not isinstance(value, bool))


def _check_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _load_source(
    name: str,
    node: yaml.Node,
    where: str,
    line: int,
    problems: list[str],
    photo_defaults: PhotoLimits | None = None,
) -> SourceConfig | None:
    """One source's settings; `line` is where its name stands, for problems about the source as a whole."""
    if not isinstance(node, yaml.MappingNode):
        problems.append(f"{where}:{line}: source {name!r}: expected a mapping of settings")
        return None
    values = dict(_DEFAULTS)
    photos = photo_defaults or PhotoLimits()
    for key_node, value_node in node.value:
        key = key_node.value
        at = f"{where}:{key_node.start_mark.line + 1}: source {name!r}"
        if key not in _DEFAULTS:
            problems.append(f"{at}: unknown setting {key!r} (known: {', '.join(_DEFAULTS)})")
            continue
        if key == "photos":
            photos = load_photo_limits(value_node, photos, where, f"source {name!r}: ", problems)
            continue
        value: Any = yaml.safe_load(yaml.serialize(value_node))
        if not _has_type(value, key):
            wanted = " or ".join(t.__name__ for t in _TYPES[key])
            problems.append(f"{at}: {key} must be {wanted}, not {type(value).__name__} {value!r}")
            continue
        if isinstance(value, list) and not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{at}: {key} must be a list of non-empty strings")
            continue
        if key in ("delay", "timeout") and value < 0:
            problems.append(f"{at}: {key} must not be negative")
            continue
        if key in ("page_limit", "page_size") and value < 1:
            problems.append(f"{at}: {key} must be at least 1")
            continue
        if key == "base_url" and value and not _check_url(value):
            problems.append(f"{at}: base_url {value!r} is not an http(s) URL")
            continue
        if key == "pages" and not all(_check_url(v) for v in value):
            problems.append(f"{at}: every page must be an absolute http(s) URL")
            continue
        values[key] = value
    at = f"{where}:{line}: source {name!r}"
    if name not in KNOWN_SOURCES:
        problems.append(f"{at}: no spider for this source (known: {', '.join(KNOWN_SOURCES)})")
        return None
    if name != "jsonld" and not values["base_url"]:
        problems.append(f"{at}: base_url is required")
    if name == "matrixsynth" and not values["feeds"]:
        problems.append(f"{at}: feeds is required (e.g. /feeds/posts/default)")
    if name in ("reverb", "ebay", "yahoo_auctions") and not values["queries"]:
        problems.append(f"{at}: queries is required")
    if name == "jsonld" and not values["pages"]:
        problems.append(f"{at}: pages is required")
    return SourceConfig(
        name=name,
        enabled=values["enabled"],
        base_url=values["base_url"].rstrip("/"),
        feeds=tuple(values["feeds"]),
        queries=tuple(values["queries"]),
        pages=tuple(values["pages"]),
        delay=float(values["delay"]),
        page_limit=values["page_limit"],
        page_size=values["page_size"],
        timeout=float(values["timeout"]),
        min_items=values["min_items"],
        date_sorted=values["date_sorted"],
        fetch_details=values["fetch_details"],
        marketplace=values["marketplace"],
        photos=photos,
    )


def load_sources(path: Path | None = None) -> CrawlConfig:
    """The validated crawl config (default: `sources.yaml` in the config directory); raises SourcesError."""
    if path is None:
        from korgwatch.paths import config_dir

        path = config_dir() / "sources.yaml"
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesError([f"{where}: cannot read: {exc.strerror}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        raise SourcesError([f"{where}:{line}: not valid YAML: {exc.problem}"]) from None
    if not isinstance(root, yaml.MappingNode):
        raise SourcesError([f"{where}:1: expected a mapping with contact_url and sources"])
    problems: list[str] = []
    contact_url = ""
    sources: dict[str, SourceConfig] = {}
    seen_sources = False
    photo_defaults = PhotoLimits()
    for key_node, value_node in root.value:  # the photo defaults first: sources may come before them
        if key_node.value == "photos":
            photo_defaults = load_photo_limits(value_node, photo_defaults, where, "", problems)
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        if key_node.value == "photos":
            continue
        if key_node.value == "contact_url":
            contact_url = str(value_node.value) if isinstance(value_node, yaml.ScalarNode) else ""
            if not _check_url(contact_url):
                problems.append(f"{where}:{line}: contact_url must be an http(s) URL")
        elif key_node.value == "sources":
            seen_sources = True
            if not isinstance(value_node, yaml.MappingNode):
                problems.append(f"{where}:{line}: sources must be a mapping of source name to settings")
                continue
            for name_node, source_node in value_node.value:
                name = name_node.value
                if name in sources:
                    problems.append(f"{where}:{name_node.start_mark.line + 1}: source {name!r} given twice")
                    continue
                loaded = _load_source(name, source_node, where, name_node.start_mark.line + 1, problems, photo_defaults)
                if loaded is not None:
                    sources[name] = loaded
        else:
            problems.append(f"{where}:{line}: unknown key {key_node.value!r} (known: contact_url, photos, sources)")
    if not contact_url and not any("contact_url" in p for p in problems):
        problems.append(f"{where}:1: contact_url is required (it goes into the User-Agent)")
    if not seen_sources:
        problems.append(f"{where}:1: sources is required")
    if problems:
        raise SourcesError(problems)
    return CrawlConfig(contact_url=contact_url, sources=sources, path=where, photos=photo_defaults)
