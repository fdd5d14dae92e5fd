"""A reissue named in the body of a listing whose title names only the vintage model (issue 12, class 5).

Sellers title a reissue by the vintage name ("Korg MS-20 analog synthesizer") and say what it is in the text:
"the one pictured is my MS-20 mini", "built from the MS-20 Kit", "it is the 86 % size reissue". Such a listing
is excluded as its title would be had it named the reissue. A reissue only compared or mentioned beside the
unit ("better than the MS-20 mini", "I also have an MS-20 mini") leaves the vintage unit in place, so a body's
reissue counts only in words that say this item is it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pipeline.mentions import AliasMatcher
from pipeline.normalise import alias_key
from pipeline.rules import Rules

# The words right before the reissue's name that make it this listing's item ("my", "this is the", "built from").
_THIS_ITEM = re.compile(
    r"(?:\bmy|\bthis is|\bthis one is|\bit is|\bit's|\bit’s|\bthis|\bpictured is|\bpictured|\bbuilt from|\bmade from|"
    r"\bselling|\bsell|\boffering|\bincludes|\bfor sale is|\bunit is|\bverkaufe|\bmein|\bmeinen|\bvends|\bmon|"
    r"\bvendo|\bil mio)"
    r"\s+(?:(?:the|a|an|own|korg|original|brand new|new|used)\s+)*$"
)
# A reissue described without its name: "it is the 86 % size reissue", "this is a reissue".
_NAMELESS = re.compile(
    r"\b(?:it is|it's|it’s|this is|this one is|this unit is|the unit is|the one pictured is)\s+(?:the|a|an)\s+"
    r"[^.,;:!?\n]{0,30}?\bre-?issue\b"
)


_OWN_PRODUCTS = frozenset({"reissue", "later product"})  # not another make's ("Mazda CX-3") nor an earlier Korg


_NOT_KEY = re.compile(r"[^a-z0-9]")


def _key(name: str) -> str:
    return _NOT_KEY.sub("", name.lower())


def _contains_name(key: str, model_key: str) -> bool:
    """Whether a product's name contains a model's as a whole number: "ms20mini" has "ms20", "ms2000" not."""
    at = key.find(model_key)
    while at != -1:
        after = key[at + len(model_key) : at + len(model_key) + 1]
        if not (after.isdigit() and model_key[-1].isdigit()):
            return True
        at = key.find(model_key, at + 1)
    return False


class Related(NamedTuple):
    """The exclusions whose names contain a model's name, and that name as it may be written in a body."""

    exclusions: frozenset[str]
    needles: tuple[str, ...]  # lower case: "ms-20", "ms20", "ms 20"
    keys: tuple[str, ...]  # the exclusions' aliases as `alias_key` gives them: "ms20mini", "ims20"


def related_exclusions(rules: Rules) -> dict[str, Related]:
    """For each vintage model, the exclusions whose names contain its name ("MS-20 mini" for the MS-20)."""
    related: dict[str, Related] = {}
    own = [(e.name, [_key(n) for n in (e.name, *e.aliases)]) for e in rules.exclusions if e.reason in _OWN_PRODUCTS]
    for model in rules.models.values():
        names = [n for n in (model.name, *model.aliases) if len(_key(n)) >= 3]
        keys = {_key(n) for n in names}
        exclusions = frozenset(
            name for name, product_keys in own if any(_contains_name(p, k) for k in keys for p in product_keys)
        )
        needles = {v for n in names for v in (n.lower(), n.lower().replace("-", ""), n.lower().replace("-", " "))}
        keys = {alias_key(a) for e in rules.exclusions if e.name in exclusions for a in (e.name, *e.aliases)}
        related[model.name] = Related(exclusions, tuple(sorted(needles)), tuple(sorted(k for k in keys if k)))
    return related


def _may_name_one_of(body: str, lowered: str, keys: tuple[str, ...]) -> bool:
    """Whether the body may name one of the exclusions: a match of an alias, as `alias_key` gives it, stands in
    the body's `alias_key` ("the MS-20 Mini" holds "ms20mini"). A cheap test that spares the alias scan of a body
    that names none, most of them."""
    # What `alias_key` drops ([\s\-/.]), by str methods: re.sub reads text that is not ASCII 40 ns a character.
    keyed = "".join((lowered if body.isascii() else body.casefold()).split()).replace("-", "").replace("/", "")
    keyed = keyed.replace(".", "")
    return any(key in keyed for key in keys)


def reissue_in_body(model: str, body: str, lowered: str, matcher: AliasMatcher,
                    related: dict[str, Related]) -> str | None:
    """The reissue the body says this listing is, or None. `body` is normalised, `lowered` its lower case.

    A reissue's name contains its model's, so a body that never writes the model's name is not scanned.
    """
    entry = related.get(model)
    if entry is None or not entry.exclusions:
        return None
    if not any(needle in lowered for needle in entry.needles):
        return f"{model} reissue" if "issue" in lowered and _NAMELESS.search(lowered) else None
    names = entry.exclusions
    for match in matcher.find(body, lowered) if _may_name_one_of(body, lowered, entry.keys) else ():
        target = match.target
        if target.kind == "exclusion" and target.name in names and _THIS_ITEM.search(
            lowered, max(0, match.start - 40), match.start
        ):
            return target.name
    if "issue" in lowered and _NAMELESS.search(lowered):
        return f"{model} reissue"
    return None
