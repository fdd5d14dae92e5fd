"""Finding which vintage models a text names: longest alias first, reissues and other makes ruled out.

All aliases compile into one regex shaped like a trie, so one pass over the text finds them all and the
longest name wins ("MS-20 mini" beats "MS-20"). Separators are flexible between letter and digit runs,
so "MS-20", "MS20", "ms 20" and "Mono / Poly" match their alias.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Literal, NamedTuple

from pipeline.normalise import alias_key, normalise
from pipeline.rules import Rules

_RUN = re.compile(r"[^\W\d_]+|\d+|[^\w\s\-/.]", re.UNICODE)
_SEP = r"(?:\s*[-/.]?\s*)"
_BOUNDARY_BEFORE = r"(?<![A-Za-z0-9])"
_BOUNDARY_AFTER = r"(?![A-Za-z0-9])"
_PLURAL = r"(?:'?s|es)?"  # "MS-20s", "Polysixes", "Sigma's": the name with a plural ending
_PLURAL_ENDINGS = ("'s", "es", "s")



_FIRST_RUN_ASCII = re.compile(r"[a-z]+|[0-9]+")
_FIRST_RUN = re.compile(r"[a-z]+|[0-9]+|[^\x00-\x7f\W\d_]+")


def _run_starts(text: str, run: str) -> Iterator[int]:
    """Where `run` begins a word (no ASCII letter or digit right before it)."""
    pos = text.find(run)
    while pos != -1:
        if pos == 0 or not (text[pos - 1].isascii() and text[pos - 1].isalnum()):
            yield pos
        pos = text.find(run, pos + 1)


Kind = Literal["model", "korg_only", "exclusion", "make"]


class AliasTarget(NamedTuple):
    """What an alias names. Internal: NamedTuples because one is built per match on the hot path."""

    kind: Kind
    name: str  # canonical model, exclusion name, or make


class AliasMatch(NamedTuple):
    target: AliasTarget
    text: str
    start: int
    end: int


def _runs(alias: str) -> list[str]:
    return [r.lower() for r in _RUN.findall(alias)]


_SEP_ATOM = "\x00"  # stands for a flexible separator between two runs of an alias


def _atoms(alias: str) -> list[str]:
    """An alias as trie atoms: its characters, with a separator atom between letter and digit runs."""
    atoms: list[str] = []
    for index, run in enumerate(_runs(alias)):
        if index:
            atoms.append(_SEP_ATOM)
        atoms.extend(run)
    return atoms


def _trie_regex(node: dict[str, dict]) -> str | None:
    """A regex for a character trie: one branch per distinct next character, so matching never tries
    two aliases that start alike one after the other; where an alias may end, the rest is optional
    (greedy, so the longest alias wins)."""
    branches = []
    for atom in sorted(k for k in node if k):
        child = node[atom]
        rest = _trie_regex(child)
        if rest is not None and "" in child:
            rest = f"(?:{rest})?"
        head = _SEP if atom == _SEP_ATOM else re.escape(atom)
        branches.append(head + (rest or ""))
    if not branches:
        return None
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def _word_trie_regex(words: tuple[str, ...]) -> str:
    """One regex for many words, as a character trie: an alternation of 150 words is tried word by word at
    every position of a title, a trie branches once per character (half the cost on real titles)."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_regex(trie) or "(?!)"


class AliasMatcher:
    """Matches every model, exclusion and other make of the rules in one pass."""

    def __init__(self, rules: Rules) -> None:
        self.targets: dict[str, AliasTarget] = {}
        trie: dict[str, dict] = {}

        self.targets_aliases: list[str] = []
        self._raw_targets: dict[str, AliasTarget | None] = {}
        # An alias written exactly ("Mono/Poly", a model's own name) wins over another that shares its key
        # ("Monopoly", which counts only beside Korg): the key drops the separators that tell them apart.
        self.exact_targets: dict[str, AliasTarget] = {}

        def add(alias: str, target: AliasTarget) -> None:
            atoms = _atoms(alias)
            if not atoms:
                return
            self.targets_aliases.append(normalise(alias))
            self.targets.setdefault(alias_key(alias), target)
            self.exact_targets.setdefault(normalise(alias).casefold(), target)
            node = trie
            for atom in atoms:
                node = node.setdefault(atom, {})
            node[""] = {}

        for make in rules.other_makes:
            add(make, AliasTarget("make", make))
        for exclusion in rules.exclusions:
            for alias in (exclusion.name, *exclusion.aliases):
                add(alias, AliasTarget("exclusion", exclusion.name))
        for model in rules.models.values():
            # Korg-only first: a canonical name such as "Delta" may itself be an ordinary word.
            for alias in model.korg_only_aliases:
                add(alias, AliasTarget("korg_only", model.name))
        for model in rules.models.values():
            for alias in (model.name, *model.aliases):
                add(alias, AliasTarget("model", model.name))
        # Case-sensitive over lower-cased text, with boundaries checked after the match: this keeps the
        # pattern a branch of literals, which lets the regex engine skip ahead by first character (an
        # IGNORECASE pattern or a leading look-behind makes it try every alias at every position, 15x slower).
        pattern = (_trie_regex(trie) or "(?!)") + _PLURAL
        self.regex = re.compile(pattern + _BOUNDARY_AFTER)
        # Even a trie regex tries a node's branches one by one, so it is run only where a word starts
        # with the first run of some alias: a cheap word scan plus a set look-up skip the rest of the text.
        first_runs = {m.group() for a in self.targets_aliases for m in [_FIRST_RUN.match(a.lower())] if m}
        # A one-word name in the plural ("Polysixes", "Sigmas") is a word of its own.
        self.first_runs = frozenset(
            first_runs | {run + ending for run in first_runs if run.isalpha() for ending in ("s", "es")}
        )
        self.regex_any_case = re.compile(f"{_BOUNDARY_BEFORE}{pattern}{_BOUNDARY_AFTER}", re.IGNORECASE)
        # Japanese writes names without spaces ("コルグポリシックス"): such names are looked for anywhere.
        self.unspaced_first_runs = tuple(sorted(r for r in self.first_runs if not r.isascii() and len(r) > 1))
        # One scan for all of them (a trie, so each position tries one branch per character), not one per name.
        self.unspaced_regex = re.compile(_word_trie_regex(self.unspaced_first_runs))

    def _scan_words(self, lowered: str) -> list[re.Match[str]]:
        ascii_text = lowered.isascii()
        runs = _FIRST_RUN_ASCII.findall(lowered) if ascii_text else _FIRST_RUN.findall(lowered)
        hits = self.first_runs.intersection(runs)
        unspaced = [] if ascii_text else [m.start() for m in self.unspaced_regex.finditer(lowered)]
        if not hits and not unspaced:  # the common case for a body: no word could start an alias
            return []
        starts = [pos for run in hits for pos in _run_starts(lowered, run)]
        starts += unspaced
        if len(starts) > 1:
            starts.sort()
        matches: list[re.Match[str]] = []
        end = 0
        for start in starts:
            if start < end:
                continue
            match = self.regex.match(lowered, start)
            if match is not None:
                end = match.end()
                matches.append(match)
        return matches

    def _target_of(self, raw: str) -> AliasTarget | None:
        """The model, exclusion or make a matched text names (memoised: the same few spellings recur)."""
        try:
            return self._raw_targets[raw]
        except KeyError:
            if len(self._raw_targets) > 10_000:
                self._raw_targets.clear()
            key = alias_key(raw)
            target = self.exact_targets.get(raw.casefold()) or self.targets.get(key)
            if target is None:  # a plural: "MS-20s", "Polysixes"
                for ending in _PLURAL_ENDINGS:
                    if key.endswith(ending) and (target := self.targets.get(key[: -len(ending)])) is not None:
                        break
            self._raw_targets[raw] = target
            return target

    def find(self, text: str, lowered: str | None = None) -> list[AliasMatch]:
        """Every alias in `text` (already normalised), left to right, never overlapping.

        `lowered` is `text.lower()` when the caller has it already.
        """
        if lowered is None:
            lowered = text.lower()
        # A rare character whose lower case is longer ("İ") would shift spans: match such text as written.
        found = self._scan_words(lowered) if len(lowered) == len(text) else self.regex_any_case.finditer(text)
        matches = []
        for m in found:
            start, end = m.span()
            raw = text[start:end]
            target = self._target_of(raw)
            if target is not None:
                matches.append(AliasMatch(target, raw, start, end))
        return matches


def mentions_korg(text: str) -> bool:
    return "korg" in text.lower() or "コルグ" in text


_MAKE_GAP = re.compile(r"^[\s\-:,'\"()]*$")
# A name followed by its maker in words: "le Monopoly de Behringer", "the MS-1 by Roland".
_MAKE_AFTER_GAP = re.compile(r"^\s+(?:de|by|von|from|di|da|del|par|made by)\s+$", re.IGNORECASE)
# A name that only describes another thing: "case for Korg MS-20", "(MS-20 clone)", "Polysix knobs".
# Checked as set look-ups of the one or two words next to the name: a regex per mention costs far more.
_NOT_THE_INSTRUMENT_BEFORE = frozenset({
    "manual", "schematic", "schematics", "handbuch", "knob", "knobs", "decal", "decals", "overlay", "for",
    "fits", "für", "pour", "per", "para", "like", "style", "clone of", "compatible with",
})
_ARTICLES = frozenset({"an", "a", "the", "die", "den", "le", "la", "il", "korg"})
_NOT_THE_INSTRUMENT_AFTER = frozenset({
    "clone", "copy", "replica", "style", "type", "case", "flight case", "gig bag", "bag", "cover", "dust cover",
    "manual", "service manual", "schematic", "schematics", "part", "parts", "knob", "knobs", "key", "keys", "pcb",
    "board", "decal", "decals", "overlay", "sticker", "stickers", "power supply", "psu", "cable", "cables",
    "patch cable", "patch cables", "plugin", "plug-in", "vst", "emulation", "sample", "samples", "sample pack",
    "patches", "soundset", "t-shirt", "tshirt", "poster",
})
_JAPANESE_FOR = ("用", "向け")  # "MS-20用ケース": a case for an MS-20
_WORD_EDGE = ".,;:!?()[]{}\"'"
_AFTER_WORDS = re.compile(
    r"\s*[-:]?\s*(?:" + "|".join(sorted((re.escape(w) for w in _NOT_THE_INSTRUMENT_AFTER), key=len, reverse=True))
    + r")(?![a-z0-9])"
)


def describes_something_else(text: str, start: int, end: int) -> bool:
    """Whether the words around a model name say the listing is of an accessory, a clone or a plugin."""
    after = text[end : end + 24]
    if after.startswith(_JAPANESE_FOR) or _AFTER_WORDS.match(after.lower()):
        return True
    words = text[max(0, start - 30) : start].lower().rsplit(None, 4)
    while words and words[-1].strip(_WORD_EDGE) in _ARTICLES:
        words.pop()
    if not words:
        return False
    last = words[-1].strip(_WORD_EDGE)
    return last in _NOT_THE_INSTRUMENT_BEFORE or f"{words[-2] if len(words) > 1 else ''} {last}".strip(
        _WORD_EDGE + " "
    ) in _NOT_THE_INSTRUMENT_BEFORE


# A title whose head is an accessory or a part, wherever the word stands: "Korg MS-20 original wooden side panels",
# "Original hard case Korg MS-20". Such a word does not make the listing an accessory when a word of inclusion or
# repair stands between it and the model name ("MS-20 with case", "Polysix + case", "MS-20, new battery").
_ACCESSORY_WORDS = (
    "case", "cases", "hardcase", "flightcase", "softcase", "gig bag", "gigbag", "bag", "cover", "dust cover",
    "dustcover", "stand", "stands", "panel", "panels", "sides", "end cheeks", "cheeks", "chassis", "body", "shell",
    "overlay", "power supply", "psu", "adapter", "adaptor", "board", "boards", "pcb", "pcbs", "key", "keys",
    "keycaps", "knob", "knobs", "slider", "sliders", "fader", "faders", "cable", "cables", "cord", "cords",
    "manual", "manuals", "service notes", "schematic", "schematics", "decal", "decals", "sticker", "stickers",
    "t-shirt", "tshirt", "poster", "brochure", "catalog", "catalogue", "flyer", "kit", "parts", "part", "spares",
    "spare", "chip", "chips", "battery", "faceplate", "keybed", "bezel", "transformer", "expansion", "interface",
    "retrofit", "eurorack", "ipad", "iphone", "erweiterung",
    "koffer", "tasche", "netzteil", "handbuch", "bedienungsanleitung", "anleitung", "platine", "tasten",
    "knöpfe", "drehknöpfe", "seitenteile", "ersatzteile", "teile", "housse", "valise", "notice", "manuel",
    "alimentation", "touches", "boutons", "pièces", "custodia", "borsa", "manuale", "alimentatore", "scheda",
    "tasti", "manopole", "ricambi", "funda", "estuche", "teclas", "perillas", "repuestos",
    "ケース", "ソフトケース", "ハードケース", "説明書", "取扱説明書", "マニュアル", "ツマミ", "ノブ", "基板", "電源",
    "アダプター", "パネル", "部品", "パーツ", "カバー",
)


# No look-behind at its start, which would make the engine try the trie at every position: the word's start is
# checked on each match instead (`accessory_words`).
_ACCESSORY = re.compile(_word_trie_regex(_ACCESSORY_WORDS) + r"(?![a-z0-9\-])")


def accessory_words(lowered: str) -> list[re.Match[str]]:
    """The accessory or part words of a lower-cased title, each a whole word.

    An ASCII title none of whose words opens an accessory word is passed over after one split into words: most
    titles name no accessory, and the split costs a third of the scan.
    """
    if lowered.isascii() and _ACCESSORY_OPENINGS.isdisjoint(_ASCII_WORD.findall(lowered)):
        return []
    return [m for m in _ACCESSORY.finditer(lowered) if not (m.start() and lowered[m.start() - 1] in _WORD_CHARS)]


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ASCII_WORD = re.compile(r"[a-z]+")
# The first word of each ASCII accessory word ("gig" of "gig bag", "t" of "t-shirt").
_ACCESSORY_OPENINGS = frozenset(_ASCII_WORD.findall(w)[0] for w in _ACCESSORY_WORDS if w.isascii())
_INCLUDED = re.compile(
    r"(?<![a-z0-9])(?:with|w/|w|incl|including|includes|included|inkl|plus|and|mit|avec|con|in|new|replaced|"
    r"serviced|upgraded|recapped|restored|fixed|repaired|cleaned|installed|modded|mod|modified|needs|need|no|"
    r"without|missing|ohne|sans|sin|senza|neue|neuer|neu|nouveau|nuovo|nuevo)(?![a-z0-9])|[+&]|付き|付属|付"
)
_COUNT_BEFORE = re.compile(r"(?:^|[\s,(])\d{1,3}\s?$")  # "61 keys", "(2) cables": a count, not a part number
_REPAIRED_AFTER = re.compile(
    r"\s*(?:replaced|replacement|recapped|serviced|upgraded|fixed|repaired|repair|cleaned|installed|ok|good|working|"
    r"leak|leaked|leaking|leakage|damage|corrosion|付|つき)"
)


_NONE: frozenset[str] = frozenset()


def is_accessory_title(lowered: str, start: int, end: int, own_words: frozenset[str] = frozenset(),
                       words: list[re.Match[str]] | None = None) -> bool:
    """Whether a title naming a model at [start, end) sells an accessory or a part of it rather than the unit.

    `own_words` are the words of the model's own kind ("control interface" for the MS-03): not an accessory.
    `words` are the title's `accessory_words` when the caller has them already.
    """
    for word in accessory_words(lowered) if words is None else words:
        w_start, w_end = word.span()
        if start <= w_start < end or word.group() in own_words:
            continue
        counted = (w_start - 4 >= end or w_start <= start) and _COUNT_BEFORE.search(lowered, 0, w_start) is not None
        if counted or _REPAIRED_AFTER.match(lowered, w_end):
            continue  # "61 keys", "battery replaced", "ケース付き"
        if word.group() in ("parts", "part") and lowered[max(0, w_start - 4) : w_start] == "for ":
            continue  # "for parts or repair": a unit, sold broken
        gap = lowered[end:w_start] if w_start >= end else lowered[w_end:start]
        if _INCLUDED.search(gap) is None:
            return True
    return False


def resolve(matches: list[AliasMatch], text: str, korg_named: bool, title: bool = False,
            kind_words: Mapping[str, frozenset[str]] | None = None,
            lowered: str | None = None) -> tuple[list[AliasMatch], list[str]]:
    """Keep the vintage model matches; return them with the names of the exclusions that were recognised.

    A model alias right after another make's name ("Behringer MS-1") belongs to that make. Aliases that are
    ordinary words ("Delta") count only when the listing names Korg. In a `title`, an accessory or part word
    anywhere makes the name describe that thing. `lowered` is `text.lower()` when the caller has it already.
    """
    if title and lowered is None:
        lowered = text.lower()
    words = accessory_words(lowered) if title and lowered is not None and len(lowered) == len(text) else []
    kept: list[AliasMatch] = []
    excluded: list[str] = []
    previous: AliasMatch | None = None
    for index, match in enumerate(matches):
        kind = match.target.kind
        if kind == "exclusion":
            excluded.append(match.target.name)
        elif kind in ("model", "korg_only"):
            after_make = (
                previous is not None
                and previous.target.kind == "make"
                and _MAKE_GAP.match(text[previous.end : match.start]) is not None
            )
            following = matches[index + 1] if index + 1 < len(matches) else None
            make_after = (
                following is not None
                and following.target.kind == "make"
                and _MAKE_AFTER_GAP.match(text[match.end : following.start]) is not None
            )
            if after_make:
                excluded.append(f"{previous.target.name} {match.text}")  # type: ignore[union-attr]
            elif make_after:
                excluded.append(f"{following.target.name} {match.text}")  # type: ignore[union-attr]
            elif describes_something_else(text, match.start, match.end) or (
                words and is_accessory_title(
                    lowered or "", match.start, match.end,
                    kind_words.get(match.target.name, _NONE) if kind_words else _NONE, words,
                )
            ):
                excluded.append(f"not the instrument: {text[max(0, match.start - 12) : match.end + 12].strip()}")
            elif kind == "model" or korg_named:
                kept.append(match)
        previous = match
    return kept, excluded
