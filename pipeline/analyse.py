"""The listing analyser: title and body in, the instruments they show with serials and flags out.

Pure: no Scrapy, no database. The same function serves `korgwatch analyze`, ingest and the crawler.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pipeline.checks import check_serial
from pipeline.mentions import AliasMatch, AliasMatcher, resolve
from pipeline.normalise import normalise_with_map, original_span
from pipeline.reissues import reissue_in_body, related_exclusions
from pipeline.results import (
    FLAG_TITLE_BODY_MISMATCH,
    Field,
    Flag,
    Instrument,
    ListingAnalysis,
    ModelMention,
    SerialCandidate,
    new_instrument,
    new_listing_analysis,
    new_model_mention,
    new_serial_candidate,
)
from pipeline.rules import ModelRule, NumberBlock, Rules
from pipeline.serials import extract_serial_candidates

_NO_MATCHES: list[AliasMatch] = []

# How much of each field the analyser reads (issue 13.3): a title is a line, a body a page. Beyond these the text
# is stored whole but not read, and the analysis says so (`ListingAnalysis.cut`), so a 50 MB field costs as
# much as its first few kilobytes.
MAX_TITLE = 2 * 1024
MAX_BODY = 64 * 1024


def _normalised(text: str) -> tuple[str, list[int] | None]:
    # Plain ASCII without a tab is its own normal form (see normalise.normalise_with_map): no call, no span map.
    if text.isascii() and "\t" not in text:
        return text, None
    return normalise_with_map(text)


class Analyser:
    """Holds the compiled matchers for one set of rules; `analyse` is then cheap per listing.

    `analyse` is the hot path of ingest and the crawler: it lowers each field once, builds result objects only
    for what it returns (through the fast builders of `pipeline.results`), and memoises which blocks a serial
    fits, since the same serial is weighed several times per listing.
    """

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.matcher = AliasMatcher(rules)
        self.related_exclusions = related_exclusions(rules)
        # The words of each model's own kind: "interface" names the MS-03 itself, not an accessory of it.
        self.kind_words = {m.name: frozenset(re.findall(r"[a-z]+", m.kind.lower())) for m in rules.models.values()}
        self._fitting: dict[tuple[str, str], tuple[NumberBlock, ...]] = {}

    def fitting_blocks(self, model: ModelRule, serial: str) -> tuple[NumberBlock, ...]:
        """`model.fitting_blocks(serial)`, memoised (bounded: serials rarely recur across listings)."""
        key = (model.name, serial)
        try:
            return self._fitting[key]
        except KeyError:
            if len(self._fitting) > 10_000:
                self._fitting.clear()
            fitting = self._fitting[key] = model.fitting_blocks(serial)
            return fitting

    def analyse(self, title: str, body: str = "") -> ListingAnalysis:
        title = title or ""
        body = body or ""
        cut: tuple[str, ...] = ()
        if len(title) > MAX_TITLE or len(body) > MAX_BODY:
            title, body, cut = _capped(title, body)
        t_norm, t_origin = _normalised(title)
        b_norm, b_origin = _normalised(body)
        t_low = t_norm.lower()
        b_low = b_norm.lower()
        korg_named = "korg" in t_low or "コルグ" in t_norm or "korg" in b_low or "コルグ" in b_norm
        title_matches = self.matcher.find(t_norm, t_low)
        title_kept, title_excluded = resolve(title_matches, t_norm, korg_named, title=True, kind_words=self.kind_words,
                                               lowered=t_low)
        if not title_kept and title_excluded:
            # The title names a reissue or another make: vintage names in the body are comparisons.
            return new_listing_analysis((), tuple(dict.fromkeys(title_excluded)), cut)
        title_mentions = _mentions(title_kept, "title", title, t_origin)
        # The body's model names matter only when the title names none, or several (to place a bundle's
        # serials); a single-instrument listing skips that scan, the costliest part of a long body.
        if len(title_mentions) == 1 or len({m.model for m in title_mentions}) == 1:
            body_matches = _NO_MATCHES
            body_mentions: tuple[ModelMention, ...] = ()
            body_excluded: list[str] = []
        else:
            body_matches = self.matcher.find(b_norm, b_low)
            body_kept, body_excluded = resolve(body_matches, b_norm, korg_named)
            body_mentions = _mentions(body_kept, "body", body, b_origin)
        if title_mentions:
            mentions = _first_of_each_model(title_mentions)
            excluded = title_excluded
            if len(mentions) == 1 and b_low:
                reissue = reissue_in_body(mentions[0].model, b_norm, b_low, self.matcher, self.related_exclusions)
                if reissue is not None:
                    return new_listing_analysis((), tuple(dict.fromkeys([*excluded, reissue])), cut)
        else:
            mentions = list(body_mentions[:1])
            excluded = body_excluded
            if mentions and self._reissue_first(mentions[0].model, body_matches, body_kept[0].start):
                # No title, and the body names the model's reissue before the model: the text is about it
                # ("So you have the Korg MS20 legacy controller […] it is not a Korg MS-20").
                return new_listing_analysis((), tuple(dict.fromkeys(excluded)), cut)
        excluded_names = tuple(dict.fromkeys(excluded)) if excluded else ()
        if not mentions:
            return new_listing_analysis((), excluded_names, cut)

        models = [self.rules.model(m.model) for m in mentions]
        title_candidates = _candidates(t_norm, t_low, "title", title, t_origin, title_matches, False)
        # With a serial in the title that fits its single instrument, the body matters only where it names a
        # serial with a cue word (a disagreement to flag); its bare numbers are then left unread. A title serial
        # that does not fit sends us through the whole body for one that does ("the plate reads 135041").
        cued_only = len(models) == 1 and any(self.fitting_blocks(models[0], c.serial) for c in title_candidates)
        body_candidates = _candidates(b_norm, b_low, "body", body, b_origin, body_matches, cued_only)
        if len(models) == 1:
            model = models[0]
            units = _several_units(t_low, mentions[0], title_candidates)
            if units:
                instruments: tuple[Instrument, ...] = tuple(
                    self._instrument(model, mentions[0], [unit]) for unit in units
                )
            else:
                candidates = title_candidates + body_candidates if body_candidates else title_candidates
                foreign = self._other_models_serials(model, title_candidates, body_candidates, b_norm, b_low,
                                                     korg_named)
                instruments = (self._instrument(model, mentions[0], candidates, foreign),)
        else:
            assigned = _assign(models, mentions, title_candidates, body_candidates, title_mentions + body_mentions,
                               self.fitting_blocks)
            instruments = tuple(
                self._instrument(model, mention, assigned[model.name])
                for model, mention in zip(models, mentions, strict=True)
            )
        return new_listing_analysis(instruments, excluded_names, cut)

    def _reissue_first(self, model: str, matches: list[AliasMatch], model_start: int) -> bool:
        """Whether a reissue or later product of `model` is named before the model itself."""
        related = self.related_exclusions[model].exclusions
        return any(m.target.kind == "exclusion" and m.target.name in related and m.start < model_start
                   for m in matches)

    def _other_models_serials(self, model: ModelRule, title_candidates: list[SerialCandidate],
                              body_candidates: list[SerialCandidate], body: str, lowered: str,
                              korg_named: bool) -> frozenset[str]:
        """Cued body serials that belong to another model the body names right before them.

        "Also for sale: a Korg Poly-61, its plate reads 702650" is the Poly-61's plate, not a second reading of
        the title unit's: it must not make a title/body mismatch. The body is scanned for names only when a cued
        body serial is not the title's and does not fit the listing's model, which is rare.
        """
        if not body_candidates:
            return frozenset()
        in_title = {c.serial for c in title_candidates}
        strangers = [c for c in body_candidates
                     if c.cue and c.serial not in in_title and not self.fitting_blocks(model, c.serial)]
        if not strangers:
            return frozenset()
        kept, _ = resolve(self.matcher.find(body, lowered), body, korg_named)
        foreign = set()
        for candidate in strangers:
            before = [m for m in kept if m.end <= candidate.start]
            if before and before[-1].target.name != model.name:
                other = self.rules.model(before[-1].target.name)
                if self.fitting_blocks(other, candidate.serial):
                    foreign.add(candidate.serial)
        return frozenset(foreign)

    def _instrument(self, model: ModelRule, mention: ModelMention,
                    candidates: list[SerialCandidate], foreign: frozenset[str] = frozenset()) -> Instrument:
        fitting_blocks = self.fitting_blocks
        if len(candidates) == 1:  # the common case: one serial, nothing to weigh it against
            only = candidates[0]
            if only.field == "title" or only.cue or fitting_blocks(model, only.serial):
                fits, only_flags = check_serial(only.serial, model, self.rules, fitting_blocks(model, only.serial))
                return new_instrument(model.name, only.serial, only, only_flags, (only,), fits, mention)
            return new_instrument(model.name, None, None, (), (), (), mention)
        # A bare number in the body is too often something else: keep it only when it fits the model.
        candidates = [c for c in candidates if c.field == "title" or c.cue or fitting_blocks(model, c.serial)]
        if not candidates:
            return new_instrument(model.name, None, None, (), (), (), mention)
        title_c = sorted((c for c in candidates if c.field == "title"), key=lambda c: (c.cue is None, c.start))
        body_c = sorted((c for c in candidates if c.field == "body"), key=lambda c: (c.cue is None, c.start))
        fitting_body = [c for c in body_c if fitting_blocks(model, c.serial)]
        flags: list[Flag] = []

        if title_c:
            chosen = title_c[0]
            body_other = next(
                (c for c in body_c if c.cue and c.serial != chosen.serial and c.serial not in foreign), None
            )
            if not fitting_blocks(model, chosen.serial) and fitting_body:
                recorded = fitting_body[0]
                flags.append(_mismatch(chosen, recorded, recorded, model))
                chosen = recorded
            elif body_other is not None and not any(c.serial == chosen.serial for c in body_c):
                flags.append(_mismatch(chosen, body_other, chosen, model))
        elif all(c.cue is None for c in body_c) and len({c.serial for c in body_c}) > 1:
            # Several bare numbers and no cue: a range or other units ("between 151215 and 151238"), none of
            # them said to be this one's.
            return new_instrument(model.name, None, None, (), (), (), mention)
        else:
            chosen = fitting_body[0] if fitting_body else body_c[0]

        fits, check_flags = check_serial(chosen.serial, model, self.rules, fitting_blocks(model, chosen.serial))
        return new_instrument(
            model.name, chosen.serial, chosen, check_flags + tuple(flags) if flags else check_flags,
            tuple(candidates), fits, mention,
        )


def _capped(title: str, body: str) -> tuple[str, str, tuple[str, ...]]:
    """The fields cut to what the analyser reads, and a note for each field that was cut."""
    cut = []
    if len(title) > MAX_TITLE:
        cut.append(f"title: first {MAX_TITLE} of {len(title)} characters read")
        title = title[:MAX_TITLE]
    if len(body) > MAX_BODY:
        cut.append(f"body: first {MAX_BODY} of {len(body)} characters read")
        body = body[:MAX_BODY]
    return title, body, tuple(cut)


def _mentions(kept: list[AliasMatch], field: Field, text: str, origin: list[int] | None) -> tuple[ModelMention, ...]:
    """The kept model matches as mentions, their spans in the original text (with no map, every character of the
    normalised text stands at its index in the original)."""
    if origin is None:
        return tuple([new_model_mention(m.target.name, m.text, field, m.start, m.end) for m in kept])
    return tuple([
        new_model_mention(m.target.name, m.text, field, *original_span(origin, m.start, m.end, len(text)))
        for m in kept
    ])


def _candidates(norm: str, lowered: str, field: Field, text: str, origin: list[int] | None,
                matches: list[AliasMatch], cued_only: bool) -> list[SerialCandidate]:
    """Serial candidates of one field, their spans and raw text taken back to the original field."""
    if not norm:
        return []
    spans = [(m.start, m.end) for m in matches] if matches else None
    found = extract_serial_candidates(norm, field, spans, cued_only=cued_only, lowered=lowered)
    if not found or norm is text:
        return found
    if origin is None:  # characters replaced one for one: the same spans, the raw text as written
        return [new_serial_candidate(c.serial, text[c.start : c.end], c.field, c.start, c.end, c.cue) for c in found]
    candidates = []
    for c in found:
        start, end = original_span(origin, c.start, c.end, len(text))
        candidates.append(new_serial_candidate(c.serial, text[start:end] or c.raw, c.field, start, end, c.cue))
    return candidates


def _mismatch(title_c: SerialCandidate, body_c: SerialCandidate, recorded: SerialCandidate,
              model: ModelRule) -> Flag:
    fits = "fits" if model.fitting_blocks(recorded.serial) else "is recorded but does not fit"
    return Flag(
        FLAG_TITLE_BODY_MISMATCH,
        f"the title gives {title_c.serial} but the body gives {body_c.serial}; "
        f"{recorded.serial} {fits} {model.name}",
        suggestions=(recorded.serial,) if recorded is not title_c else (body_c.serial,),
    )


# Words that make a title of one model a listing of several units: "pair of", "2x", "lot of three", "Polysixes".
_SEVERAL = re.compile(
    r"(?<![a-z0-9])(?:pair|two|three|four|five|both|lot|set of|twins?|\d\s?x|x\s?\d|zwei|drei|paar|deux|trois|"
    r"due|tre|coppia|dos|tres|par de)(?![a-z0-9])"
)


def _several_units(lowered_title: str, mention: ModelMention,
                   candidates: list[SerialCandidate]) -> list[SerialCandidate]:
    """The title's serials, one per unit, when the title sells several units of its one model; else none."""
    if len(candidates) < 2:
        return []
    alias = mention.alias.lower()
    plural = alias.endswith("s") and not mention.model.lower().endswith("s")
    if not plural and _SEVERAL.search(lowered_title) is None:
        return []
    units: dict[str, SerialCandidate] = {}
    for c in candidates:
        units.setdefault(c.serial, c)
    return list(units.values()) if len(units) > 1 else []


def _first_of_each_model(mentions: tuple[ModelMention, ...]) -> list[ModelMention]:
    seen: dict[str, ModelMention] = {}
    for m in mentions:
        seen.setdefault(m.model, m)
    return list(seen.values())


def _assign(models: list[ModelRule], mentions: list[ModelMention], title_c: list[SerialCandidate],
            body_c: list[SerialCandidate], all_mentions: tuple[ModelMention, ...],
            fitting_blocks: Callable[[ModelRule, str], tuple[NumberBlock, ...]]) -> dict[str, list[SerialCandidate]]:
    """Give each candidate to one instrument of a bundle: the one whose blocks it fits, else the nearest name."""
    assigned: dict[str, list[SerialCandidate]] = {m.name: [] for m in models}
    if len(models) == 1:
        assigned[models[0].name] = title_c + body_c
        return assigned
    names = {m.name for m in models}
    for candidate in title_c + body_c:
        fitting = [m.name for m in models if fitting_blocks(m, candidate.serial)]
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
