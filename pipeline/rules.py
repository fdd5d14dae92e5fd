"""The number-block rules as typed objects, loaded from `config/` and validated with file-and-line errors.

The YAML is the register keeper's to edit; this module is the only place that reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.normalise import alias_key

EXCLUSION_REASONS = ("reissue", "later product", "earlier Korg", "other make")
_PATTERN_RE = re.compile(r"^(?P<prefix>\d*)(?P<space> ?)(?P<free>n+)$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a rules file, located for a human."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class RulesError(ValueError):
    """Raised when the rules files cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class NumberBlock:
    """A number type such as `14nnnn`: fixed leading digits and a count of free digits.

    `439nnn` has prefix "439" and length 6; `53 nnnnnn` is written with a space on the plate, which
    `spaced` remembers, but the serial itself is the eight digits.
    """

    pattern: str
    prefix: str
    length: int
    min: int | None = None
    max: int | None = None
    certain: bool = True
    note: str | None = None
    spaced: bool = False

    def fits(self, serial: str) -> bool:
        """Whether a digits-only serial belongs to this block."""
        if len(serial) != self.length or not serial.startswith(self.prefix) or not serial.isdigit():
            return False
        if self.min is None and self.max is None:
            return True
        value = int(serial)
        return not ((self.min is not None and value < self.min) or (self.max is not None and value > self.max))

    @property
    def lowest(self) -> int:
        """The first serial of the block (its `min` where the seed gives one)."""
        base = int(self.prefix.ljust(self.length, "0"))
        return max(base, self.min) if self.min is not None else base

    def describe(self) -> str:
        text = self.pattern
        if self.min is not None:
            text += f" from {self.min}"
        if self.max is not None:
            text += f" to {self.max}"
        if not self.certain:
            text += " (uncertain)"
        return text


@dataclass(frozen=True, slots=True)
class ModelRule:
    """A vintage model: its canonical name, the names it goes by, and its number blocks."""

    name: str
    aliases: tuple[str, ...]
    korg_only_aliases: tuple[str, ...]
    year: int
    year_certain: bool
    kind: str
    blocks: tuple[NumberBlock, ...]
    source_line: int = 0

    @property
    def lengths(self) -> frozenset[int]:
        """The digit counts of this model's number types (6 for most, 4 for the Sigma's 0nnn, 8 for plates)."""
        return frozenset(b.length for b in self.blocks)

    def fitting_blocks(self, serial: str) -> tuple[NumberBlock, ...]:
        return tuple([b for b in self.blocks if b.fits(serial)])


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A product that must not be taken for a vintage model (a reissue, a later product, another make's)."""

    name: str
    aliases: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything the analyser needs to know, loaded once."""

    models: dict[str, ModelRule]
    exclusions: tuple[Exclusion, ...] = ()
    other_makes: tuple[str, ...] = ()
    files: tuple[str, ...] = field(default=())

    def model(self, name: str) -> ModelRule:
        try:
            return self.models[name]
        except KeyError:
            raise KeyError(f"unknown model {name!r}") from None

    def fits(self, model_name: str, serial: str) -> list[str]:
        """The patterns of `model_name`'s blocks that `serial` fits (empty when none)."""
        return [b.pattern for b in self.model(model_name).fitting_blocks(serial)]

    def models_fitting(self, serial: str) -> list[tuple[ModelRule, NumberBlock]]:
        """Every model block the serial fits, in the order of the rules file."""
        index = _block_index(self)
        found = [
            entry
            for k in index.prefix_lengths
            for entry in index.by_length_prefix.get((len(serial), serial[:k]), ())
            if entry[2].fits(serial)
        ]
        return [(model, block) for _, model, block in sorted(found, key=lambda e: e[0])]


@dataclass(frozen=True, slots=True)
class _BlockIndex:
    """Blocks keyed by (length, prefix), so a serial's fitting models are a few dict look-ups."""

    by_length_prefix: dict[tuple[int, str], tuple[tuple[int, ModelRule, NumberBlock], ...]]
    prefix_lengths: tuple[int, ...]


_INDEXES: dict[int, tuple[Rules, _BlockIndex]] = {}


def _block_index(rules: Rules) -> _BlockIndex:
    cached = _INDEXES.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    grouped: dict[tuple[int, str], list[tuple[int, ModelRule, NumberBlock]]] = {}
    order = 0
    for model in rules.models.values():
        for block in model.blocks:
            grouped.setdefault((block.length, block.prefix), []).append((order, model, block))
            order += 1
    index = _BlockIndex(
        {key: tuple(value) for key, value in grouped.items()},
        tuple(sorted({prefix_length for _, prefix_length in ((k[0], len(k[1])) for k in grouped)})),
    )
    _INDEXES[id(rules)] = (rules, index)
    return index


# --- reading YAML with line numbers -------------------------------------------------------------------


def _to_python(node: yaml.Node) -> Any:
    """Turn a composed YAML node into plain data, keeping each mapping's line as key `__line__`."""
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {"__line__": node.start_mark.line + 1}
        for key_node, value_node in node.value:
            result[str(_to_python(key_node))] = _to_python(value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n) for n in node.value]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Resolve a scalar with the safe loader's implicit types (int, bool, null), keeping it a str otherwise."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), 0, f"cannot read: {exc}"))
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        problems.append(Problem(str(path), line, f"not valid YAML: {exc.problem}"))
        return None
    return None if node is None else _to_python(node)


class _Checker:
    """Collects problems for one file while typed objects are built from it."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = str(path)
        self.problems = problems

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def names(self, entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = entry.get(key, [])
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            self.add(entry["__line__"], f"{where}: '{key}' must be a list of names")
            return ()
        names = tuple(str(v).strip() for v in value)
        for name in names:
            if not name:
                self.add(entry["__line__"], f"{where}: empty name in '{key}'")
        return tuple(n for n in names if n)

    def unknown_keys(self, entry: dict[str, Any], allowed: Iterable[str], where: str) -> None:
        extra = sorted(set(entry) - set(allowed) - {"__line__"})
        if extra:
            self.add(entry["__line__"], f"{where}: unknown key(s) {', '.join(extra)}")


def _parse_block(raw: Any, check: _Checker, line: int, where: str) -> NumberBlock | None:
    if isinstance(raw, str):
        raw = {"pattern": raw, "__line__": line}
    if not isinstance(raw, dict):
        check.add(line, f"{where}: a block must be a mapping with a 'pattern'")
        return None
    line = raw["__line__"]
    check.unknown_keys(raw, ("pattern", "min", "max", "certain", "note"), where)
    pattern = raw.get("pattern")
    if not isinstance(pattern, str | int):
        check.add(line, f"{where}: block has no 'pattern'")
        return None
    pattern = str(pattern)
    match = _PATTERN_RE.match(pattern)
    if not match or (not match["prefix"] and not pattern.startswith("n")):
        check.add(line, f"{where}: block pattern {pattern!r} is not digits followed by n's (e.g. 14nnnn)")
        return None
    length = len(match["prefix"]) + len(match["free"])
    bounds: dict[str, int | None] = {}
    for key in ("min", "max"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            check.add(line, f"{where}: block {pattern} '{key}' must be a whole number")
            value = None
        bounds[key] = value
    block = NumberBlock(
        pattern=pattern,
        prefix=match["prefix"],
        length=length,
        min=bounds["min"],
        max=bounds["max"],
        certain=bool(raw.get("certain", True)),
        note=raw.get("note"),
        spaced=bool(match["space"]),
    )
    for key in ("min", "max"):
        value = bounds[key]
        if value is not None and (len(str(value)) > length or not str(value).zfill(length).startswith(block.prefix)):
            check.add(line, f"{where}: block {pattern} '{key}' {value} lies outside the block")
    if block.min is not None and block.max is not None and block.min > block.max:
        check.add(line, f"{where}: block {pattern} has min above max")
    return block


def _parse_model(entry: Any, check: _Checker) -> ModelRule | None:
    if not isinstance(entry, dict):
        check.add(0, "each entry of 'models' must be a mapping")
        return None
    line = entry["__line__"]
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        check.add(line, "model has no 'name'")
        return None
    where = f"model {name}"
    check.unknown_keys(
        entry, ("name", "aliases", "korg_only_aliases", "year", "year_certain", "kind", "blocks", "note"), where
    )
    year = entry.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 1970 <= year <= 1990:
        check.add(line, f"{where}: 'year' must be a year between 1970 and 1990, not {year!r}")
        year = 0
    kind = entry.get("kind")
    if not isinstance(kind, str) or not kind:
        check.add(line, f"{where}: 'kind' is missing")
        kind = ""
    raw_blocks = entry.get("blocks")
    if not isinstance(raw_blocks, list) or not raw_blocks:
        check.add(line, f"{where}: 'blocks' must list at least one number block")
        raw_blocks = []
    blocks = [_parse_block(b, check, line, where) for b in raw_blocks]
    return ModelRule(
        name=name.strip(),
        aliases=check.names(entry, "aliases", where),
        korg_only_aliases=check.names(entry, "korg_only_aliases", where),
        year=year,
        year_certain=bool(entry.get("year_certain", True)),
        kind=kind,
        blocks=tuple(b for b in blocks if b is not None),
        source_line=line,
    )


def _parse_exclusion(entry: Any, check: _Checker) -> Exclusion | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        check.add(entry.get("__line__", 0) if isinstance(entry, dict) else 0, "exclusion has no 'name'")
        return None
    line = entry["__line__"]
    where = f"exclusion {entry['name']}"
    check.unknown_keys(entry, ("name", "aliases", "reason", "note"), where)
    reason = entry.get("reason")
    if reason not in EXCLUSION_REASONS:
        check.add(line, f"{where}: 'reason' must be one of {', '.join(EXCLUSION_REASONS)}, not {reason!r}")
    return Exclusion(name=entry["name"], aliases=check.names(entry, "aliases", where), reason=str(reason))


def _rule_files(config: Path) -> list[Path]:
    """`models.yaml` plus any `models.d/*.yaml` a user adds, in name order."""
    files = [config / "models.yaml"] if (config / "models.yaml").exists() else []
    if (config / "models.d").is_dir():
        files += sorted((config / "models.d").glob("*.yaml"))
    return files


def _check_duplicates(models: list[ModelRule], exclusions: list[Exclusion], problems: list[Problem],
                      path_of: dict[str, str]) -> None:
    """Two models answering to one alias would make the analyser guess: refuse it."""
    owner: dict[str, str] = {}
    for model in models:
        for alias in (model.name, *model.aliases, *model.korg_only_aliases):
            key = alias_key(alias)
            if key in owner and owner[key] != model.name:
                problems.append(Problem(path_of[model.name], model.source_line,
                                        f"model {model.name}: alias {alias!r} also names {owner[key]}"))
            owner.setdefault(key, model.name)
    for exclusion in exclusions:
        for alias in (exclusion.name, *exclusion.aliases):
            key = alias_key(alias)
            if key in owner and owner[key] in {m.name for m in models}:
                problems.append(Problem(path_of.get(exclusion.name, "?"), 0,
                                        f"exclusion {exclusion.name}: alias {alias!r} is model {owner[key]}"))


def check_rules(config: Path) -> tuple[Rules | None, list[Problem]]:
    """Load the rules and return them with every problem found (rules is None when any problem is found)."""
    problems: list[Problem] = []
    files = _rule_files(config)
    if not files:
        return None, [Problem(str(config / "models.yaml"), 0, "no rules file found")]
    models: list[ModelRule] = []
    exclusions: list[Exclusion] = []
    other_makes: list[str] = []
    path_of: dict[str, str] = {}
    for path in files:
        data = _read_yaml(path, problems)
        if data is None:
            continue
        check = _Checker(path, problems)
        if not isinstance(data, dict):
            check.add(1, "the file must be a mapping with 'models', 'exclusions', 'other_makes'")
            continue
        check.unknown_keys(data, ("models", "exclusions", "other_makes"), "top level")
        for entry in data.get("models") or []:
            model = _parse_model(entry, check)
            if model is None:
                continue
            if model.name in path_of:
                check.add(model.source_line, f"model {model.name} is defined twice (also in {path_of[model.name]})")
                continue
            path_of[model.name] = str(path)
            models.append(model)
        for entry in data.get("exclusions") or []:
            exclusion = _parse_exclusion(entry, check)
            if exclusion is not None:
                path_of.setdefault(exclusion.name, str(path))
                exclusions.append(exclusion)
        other_makes += [str(m) for m in data.get("other_makes") or []]
    _check_duplicates(models, exclusions, problems, path_of)
    if problems:
        return None, problems
    rules = Rules(
        models={m.name: m for m in models},
        exclusions=tuple(exclusions),
        other_makes=tuple(other_makes),
        files=tuple(str(f) for f in files),
    )
    return rules, []


def load_rules(config: Path | None = None) -> Rules:
    """The validated rules; raises RulesError listing every problem."""
    if config is None:
        from korgwatch.paths import config_dir  # late import: pipeline/ stays free of our other packages

        config = config_dir()
    rules, problems = check_rules(config)
    if rules is None:
        raise RulesError(problems)
    return rules


def iter_block_patterns(rules: Rules) -> Iterator[tuple[str, NumberBlock]]:
    for model in rules.models.values():
        for block in model.blocks:
            yield model.name, block
