"""What the read commands' filters accept: any alias the rules know for a model, the analyser's flag codes.

A filter that matches nothing because of a typo looks like an empty result; these refuse it instead, with
the list of valid values.
"""

from __future__ import annotations

from pipeline.normalise import alias_key
from pipeline.results import ALL_FLAG_CODES
from pipeline.rules import Rules


class FilterError(ValueError):
    """An unknown filter value; the message lists the valid ones."""


def model_aliases(rules: Rules) -> dict[str, str]:
    """alias key ('ms20', 'polysix') → canonical model name, for every name and alias in the rules."""
    index: dict[str, str] = {}
    for rule in rules.models.values():
        for name in (rule.name, *rule.aliases, *rule.korg_only_aliases):
            index.setdefault(alias_key(name), rule.name)
    return index


def canonical_model(rules: Rules, text: str) -> str:
    """The canonical name of the model `text` names, in any case and spelling the rules know ('ms20' → 'MS-20')."""
    found = model_aliases(rules).get(alias_key(text))
    if found is None:
        raise FilterError(f"--model: unknown model {text!r}; known models: {', '.join(rules.models)}")
    return found


def flag_code(text: str) -> str:
    """A flag code, case-insensitively; unknown ones are refused with the list."""
    code = text.strip().lower().replace("-", "_")
    if code not in ALL_FLAG_CODES:
        raise FilterError(f"--code: unknown flag code {text!r}; flag codes: {', '.join(ALL_FLAG_CODES)}")
    return code
