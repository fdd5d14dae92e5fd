"""The listing analyser: title and body in, the instruments they show with serials and flags out.

Pure: no Scrapy, no database. The same function serves `korgwatch analyze`, ingest and the crawler.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.checks import check_serial
from pipeline.mentions import AliasMatch, AliasMatcher, mentions_korg, resolve
from pipeline.normalise import normalise_with_map, original_span
from pipeline.results import (
    FLAG_TITLE_BODY_MISMATCH,
    Field,
    Flag,
    Instrument,
    ListingAnalysis,
    ModelMention,
    SerialCandidate,
)
from pipeline.rules import ModelRule, Rules
from pipeline.serials import extract_serial_candidates


@dataclass(frozen=True, slots=True)
class _Field:
    """One field of a listing, normalised, with the way back to the original characters."""

    name: Field
    text: str
    norm: str
    origin: list[int] | None

    @classmethod
    def of(cls, name: Field, text: str) -> _Field:
        norm, origin = normalise_with_map(text)
        return cls(name, text, norm, origin)

    def span(self, start: int, end: int) -> tuple[int, int]:
        return original_span(self.origin, start, end, len(self.text))


class Analyser:
    """Holds the compiled matchers for one set of rules; `analyse` is then cheap per listing."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.matcher = AliasMatcher(rules)

    def _mentions(self, field: _Field, matches: list[AliasMatch], korg_named: bool) -> tuple[
            tuple[ModelMention, ...], tuple[str, ...]]:
        kept, excluded = resolve(matches, field.norm, korg_named)
        mentions = tuple(ModelMention(m.target.name, m.text, field.name, *field.span(m.start, m.end)) for m in kept)
        return mentions, tuple(excluded)

    def _candidates(self, field: _Field, matches: list[AliasMatch], cued_only: bool = False) -> list[SerialCandidate]:
        candidates = []
        spans = [(m.start, m.end) for m in matches]
        for c in extract_serial_candidates(field.norm, field.name, skip=spans, cued_only=cued_only):
            start, end = field.span(c.start, c.end)
            if field.origin is not None:
                c = SerialCandidate(c.serial, field.text[start:end] or c.raw, c.field, start, end, c.cue)
            candidates.append(c)
        return candidates

    def analyse(self, title: str, body: str = "") -> ListingAnalysis:
        t = _Field.of("title", title or "")
        b = _Field.of("body", body or "")
        korg_named = mentions_korg(t.norm) or mentions_korg(b.norm)
        title_matches = self.matcher.find(t.norm)
        title_mentions, title_excluded = self._mentions(t, title_matches, korg_named)
        if not title_mentions and title_excluded:
            # The title names a reissue or another make: vintage names in the body are comparisons.
            return ListingAnalysis((), tuple(dict.fromkeys(title_excluded)))
        # The body's model names matter only when the title names none, or several (to place a bundle's
        # serials); a single-instrument listing skips that scan, the costliest part of a long body.
        single = len({m.model for m in title_mentions}) == 1
        body_matches = [] if single else self.matcher.find(b.norm)
        body_mentions, body_excluded = self._mentions(b, body_matches, korg_named)
        if title_mentions:
            mentions = _first_of_each_model(title_mentions)
            excluded = title_excluded
        else:
            mentions = list(body_mentions[:1])
            excluded = body_excluded
        excluded = tuple(dict.fromkeys(excluded))
        if not mentions:
            return ListingAnalysis((), excluded)

        models = [self.rules.model(m.model) for m in mentions]
        title_candidates = self._candidates(t, title_matches)
        # With a serial in the title that fits its single instrument, the body matters only where it names a
        # serial with a cue word (a disagreement to flag); its bare numbers are then left unread. A title serial
        # that does not fit sends us through the whole body for one that does ("the plate reads 135041").
        cued_only = len(models) == 1 and any(models[0].fitting_blocks(c.serial) for c in title_candidates)
        assigned = _assign(
            models, mentions, title_candidates, self._candidates(b, body_matches, cued_only),
            title_mentions + body_mentions,
        )
        instruments = tuple(
            self._instrument(model, mention, assigned[model.name])
            for model, mention in zip(models, mentions, strict=True)
        )
        return ListingAnalysis(instruments, excluded)

    def _instrument(self, model: ModelRule, mention: ModelMention,
                    candidates: list[SerialCandidate]) -> Instrument:
        if len(candidates) == 1:  # the common case: one serial, nothing to weigh it against
            only = candidates[0]
            if only.field == "title" or only.cue or model.fitting_blocks(only.serial):
                fits, only_flags = check_serial(only.serial, model, self.rules)
                return Instrument(model.name, only.serial, only, only_flags, (only,), fits, mention)
            return Instrument(model.name, None, mention=mention)
        # A bare number in the body is too often something else: keep it only when it fits the model.
        candidates = [c for c in candidates if c.field == "title" or c.cue or model.fitting_blocks(c.serial)]
        if not candidates:
            return Instrument(model.name, None, mention=mention)
        title_c = sorted((c for c in candidates if c.field == "title"), key=lambda c: (c.cue is None, c.start))
        body_c = sorted((c for c in candidates if c.field == "body"), key=lambda c: (c.cue is None, c.start))
        fitting_body = [c for c in body_c if model.fitting_blocks(c.serial)]
        flags: list[Flag] = []

        if title_c:
            chosen = title_c[0]
            body_other = next((c for c in body_c if c.cue and c.serial != chosen.serial), None)
            if not model.fitting_blocks(chosen.serial) and fitting_body:
                recorded = fitting_body[0]
                flags.append(_mismatch(chosen, recorded, recorded, model))
                chosen = recorded
            elif body_other is not None and not any(c.serial == chosen.serial for c in body_c):
                flags.append(_mismatch(chosen, body_other, chosen, model))
        else:
            chosen = fitting_body[0] if fitting_body else body_c[0]

        fits, check_flags = check_serial(chosen.serial, model, self.rules)
        return Instrument(
            model=model.name,
            serial=chosen.serial,
            serial_candidate=chosen,
            flags=tuple(check_flags) + tuple(flags),
            candidates=tuple(candidates),
            fits=fits,
            mention=mention,
        )


def _mismatch(title_c: SerialCandidate, body_c: SerialCandidate, recorded: SerialCandidate,
              model: ModelRule) -> Flag:
    fits = "fits" if model.fitting_blocks(recorded.serial) else "is recorded but does not fit"
    return Flag(
        FLAG_TITLE_BODY_MISMATCH,
        f"the title gives {title_c.serial} but the body gives {body_c.serial}; "
        f"{recorded.serial} {fits} {model.name}",
        suggestions=(recorded.serial,) if recorded is not title_c else (body_c.serial,),
    )


def _first_of_each_model(mentions: tuple[ModelMention, ...]) -> list[ModelMention]:
    seen: dict[str, ModelMention] = {}
    for m in mentions:
        seen.setdefault(m.model, m)
    return list(seen.values())


def _assign(models: list[ModelRule], mentions: list[ModelMention], title_c: list[SerialCandidate],
            body_c: list[SerialCandidate], all_mentions: tuple[ModelMention, ...]) -> dict[str, list[SerialCandidate]]:
    """Give each candidate to one instrument of a bundle: the one whose blocks it fits, else the nearest name."""
    assigned: dict[str, list[SerialCandidate]] = {m.name: [] for m in models}
    if len(models) == 1:
        assigned[models[0].name] = title_c + body_c
        return assigned
    names = {m.name for m in models}
    for candidate in title_c + body_c:
        fitting = [m.name for m in models if m.fitting_blocks(candidate.serial)]
        if len(fitting) == 1:
            assigned[fitting[0]].append(candidate)
            continue
        before = [m for m in all_mentions if m.field == candidate.field and m.end <= candidate.start
                  and m.model in names]
        target = before[-1].model if before else mentions[0].model
        assigned[target].append(candidate)
    return assigned


_CACHE: dict[int, tuple[Rules, Analyser]] = {}


def analyser_for(rules: Rules) -> Analyser:
    """One compiled Analyser per rules object."""
    entry = _CACHE.get(id(rules))
    if entry is None or entry[0] is not rules:
        entry = (rules, Analyser(rules))
        _CACHE[id(rules)] = entry
    return entry[1]


def analyse_listing(title: str, body: str, rules: Rules) -> ListingAnalysis:
    """Analyse one listing's title and body against the rules."""
    return analyser_for(rules).analyse(title, body)
