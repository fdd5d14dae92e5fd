"""Finding the strings in a listing that may be serial numbers, and only those.

Sellers introduce serials with cue words in many languages ("S/N", "Seriennummer", "製造番号"), write them
with digit-group separators ("388'831", "373 101") or after a hash ("#144990"), and surround them with
numbers that are not serials: prices, years, phone numbers, postcodes, eBay item numbers, model names.
Cue-word candidates are trusted; a bare six-digit number is taken only where nothing says it is something else.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from pipeline.results import Field, SerialCandidate, new_serial_candidate

# Written in lower case and matched case-sensitively over lower-cased text: every alternative then starts
# with a literal, which lets the regex engine skip ahead by first character (30 us per KB instead of 460).
_CUE = (
    r"s(?:\s*/\s*n(?:o|°)?|\.\s*n\.|n(?![a-z])"
    r"|er(?:ial|\.)?[\s\-]*(?:number|num\.?|nr\.?|no\.?|n°|#)|erial(?:nummer|e)?"
    r"|erie(?:n)?\s*-?\s*(?:nummer|nr\.?)|eriennr\.?)"
    r"|n(?:um[ée]ro\s+de\s+s[ée]rie|[°º]\s*de\s+s[ée]rie|o\s+de\s+s[ée]rie|umero\s+di\s+serie"
    r"|\.?\s*di\s+serie|[úu]mero\s+de\s+s[ée]rie|[úu]m\.?\s+de\s+s[ée]rie|umer\s+seryjny|umero\s+seriale"
    r"|o\.|r\.|°\.?)"  # the bare number words "No." "Nr." "N°": refused after "order", "part", "item"...
    r"|matricola|製造(?:番号|no\.?|ナンバー)|製番|シリアル(?:番号|ナンバー|no\.?|number)?"
)
# A plate sentence: a cue or a plate word, a few words without digits, then the number ("Serial no. on the back
# plate: 143390", "the plate on the rear says 377001", "Seriennummer auf dem Typenschild: 389420").
# Every alternative opens with a literal, as in _CUE: an optional opening group would be tried at every position.
_PLATE_WORD = (
    r"(?:name|number|serial|rating|type)\s*plate|plate|typenschild|seriennummernschild|plaque|targhetta|placa|銘板"
)
_VALUE = (
    r"(?P<value>53 \d{6}(?!\d)"  # Hagström importer plate
    r"|\d{1,3}(?:['., ]\d{3})+(?![\d'])"  # 388'831, 373 101
    r"|[a-z]{0,3}\d[a-z0-9]*)"  # 144571, 1703C036, ZU72723
)
_CUED_TAIL = r"\s*(?:[:#=.\-]|no\.?|nr\.?|n°)?\s*(?:#\s*)?(?:is\s+|ist\s+|est\s+)?(?:[(\[]\s*)?"
_CUED = re.compile(rf"(?P<cue>{_CUE}){_CUED_TAIL}{_VALUE}")
_CUED_ANY_CASE = re.compile(rf"(?P<cue>{_CUE}){_CUED_TAIL}{_VALUE}", re.IGNORECASE)
_WORDY_VALUE = r"(?P<value>\d{5,7})(?![\d'])"
_WORDY_GAP = r"[^\d\n.!?;]{1,40}?"  # a few words within one sentence, no digit among them
_WORDY = re.compile(rf"(?P<cue>{_CUE}|{_PLATE_WORD}){_WORDY_GAP}{_WORDY_VALUE}")
_WORDY_ANY_CASE = re.compile(rf"(?P<cue>{_CUE}|{_PLATE_WORD}){_WORDY_GAP}{_WORDY_VALUE}", re.IGNORECASE)
_Readings = tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]
_CUE_READINGS: _Readings = ((_CUED, _CUED_ANY_CASE), (_WORDY, _WORDY_ANY_CASE))
_PLATE_READING: _Readings = ((_WORDY, _WORDY_ANY_CASE),)
_PLATE_WORDS = ("plate", "plaque", "placa", "typenschild", "targhetta", "schild", "銘板")
# A title's number right after a model name, of a length a wrong serial has (seed: "25270", "3809004"); six
# digits are found as bare serials already.
_AFTER_NAME = re.compile(r"[ :(\-]{1,3}(?P<value>\d{5}|\d{7})(?![\d])")
# The digit runs that can give a candidate, each matched from its first digit to its last: six digits (a bare
# serial), three before a quote (Swiss 388'831), four to eight right after "#" or "# ". Shorter or longer runs are
# never a serial; finding only these, in C, spares a Python step per price, year and phone number of a long body.
# Digits are spelled out rather than counted ({3,}): a pattern that opens with a repeat loses the regex engine's
# skip to the next digit, and costs 3x as much.
_CANDIDATE_RUN = re.compile(
    r"[0-9](?<![0-9][0-9])[0-9][0-9]"  # a run's first three digits (the character before it is not a digit)
    r"(?:[0-9][0-9][0-9](?![0-9])"  # six in all
    r"|(?=')"  # three, then a quote
    r"|(?:(?<=#[0-9][0-9][0-9])|(?<=# [0-9][0-9][0-9]))[0-9][0-9]?[0-9]?[0-9]?[0-9]?(?![0-9]))"  # 4-8 after a hash
)
_URL = re.compile(r"https?://\S+|www\.\S+")
# Every cue contains one of these words: cue-word candidates are looked for only around where they occur.
# The words starting with "s" are found by one regex with a literal first character, which the regex engine
# skips to as fast as str.find (a top-level alternation of all words would be tried at every "s", 10x slower);
# the rest by str.find (a regex per word, or one alternation of them, scans the text at twice the cost).
# "pla" stands for the plate words (plate, plaque, placa): one scan for the three. No word holds an "s" after its
# first letter, so the scan misses no occurrence.
# "schild" finds the German plate words (Typenschild, Seriennummernschild), whose cue opens before the "s".
_S_CUE_WORD = re.compile(r"s(?:/| /|\.n|n|er(?:[. #\-]|i(?:al|e)|yj)|érie|child)")  # s/, s /, s.n, sn, ser., serial…
_OTHER_CUE_WORDS_ASCII = ("no.", "nr.", "pla", "matricola", "targhetta")
_OTHER_CUE_WORDS = (*_OTHER_CUE_WORDS_ASCII, "n°", "製", "シリアル", "銘板")
# Cues that are only a word for "number": what stands before them decides ("order no. 143002" is no serial).
_NUMBER_CUES = frozenset({"no.", "nr.", "n°", "n°."})
_SHORT_TEXT = 200  # up to this length a text is read with one cue-regex pass
_BARE_BEFORE_FORBIDDEN = frozenset(".,'/$€£¥#+-_")
_BARE_AFTER_FORBIDDEN = frozenset("%°_")

# Words that make a nearby bare number something other than a serial (checked with endswith/startswith,
# which costs far less than a regex over the window).
_NOT_SERIAL_BEFORE = (
    "usd", "eur", "gbp", "jpy", "chf", "cad", "aud", "sek", "nok", "dkk", "price", "preis", "prix", "prezzo",
    "precio", "価格", "item", "artikel", "article", "ebay", "listing", "order", "auction", "lot", "ref", "tel",
    "phone", "fax", "call", "mobile", "zip", "postcode", "post code", "plz", "cp", "cap", "〒", "code", "id",
    "$", "€", "£", "¥", "₩", "art", "part", "bestell",
)
# Besides those, the words a "No." may follow that make it another kind of number.
_NOT_SERIAL_BEFORE_NUMBER_CUE = (
    *_NOT_SERIAL_BEFORE, "model", "cat", "catalog", "catalogue", "invoice", "tracking", "page", "vol",
    "issue", "track", "op", "opus", "box", "room", "house", "tel.", "teile", "modell", "typ", "type",
)
_YEAR_AFTER = re.compile(r"[ \-/(](?:19[5-9]\d|20[0-3]\d)(?!\d)")
_NUMBER_WORDS = ("number", "no", "nr", "num", "#")
_NOT_SERIAL_AFTER = (
    "円", "yen", "€", "$", "eur", "usd", "gbp", "jpy", "chf", "sek", "nok", "dkk", "kr ", "kr.", ",-", "dollar",
    "euro", "pound", "km", "miles", "views", "hits", "followers", "likes", "bid",
)
_SEPARATORS = " :#.-\t\n"


def _ends_with_word(text: str, words: tuple[str, ...]) -> str | None:
    """The word of `words` that `text` ends with as a whole word (not "pilot" for "lot"), if any."""
    for word in words:
        if text.endswith(word):
            before = text[-len(word) - 1 : -len(word)]
            if not (before.isascii() and before.isalpha()) or not word.isalpha():
                return word
    return None


# A model-like word: "MS-10", "SAS-20", "KR55" (not "0171", "Tel:0171").
_NAME_WORD = re.compile(r"[a-z]{1,4}[-‐‑]?\d{1,4}", re.IGNORECASE)


def _ends_with_name(before: str) -> bool:
    """Whether the word before a number's separator is a model name ("… MS-10 "), whose digits end it."""
    words = before[:-1].rsplit(None, 1)
    return bool(words) and _NAME_WORD.fullmatch(words[-1].lstrip(",;(")) is not None


def _is_other_number(before: str, after: str, after_name: bool = False) -> bool:
    """Whether the words around a bare number make it a price, an item number, a phone number or a postcode.

    `after_name`: the number follows a model name ("Korg MS-20 730144"), whose digits are no group of it, and
    a year after it ("730144 1978") is no group either.
    """
    if not after_name and before[-2:-1].isdigit() and before[-1:] in " -/)" and not _ends_with_name(before):
        return True  # a group of a longer number: a phone number, a date (but "MS-10 134458" follows a name)
    if after[:1] in " -/(" and after[1:2].isdigit() and not (after_name and _YEAR_AFTER.match(after)):
        return True
    stripped = before.lower().rstrip(_SEPARATORS)
    number_word = _ends_with_word(stripped, _NUMBER_WORDS)
    if number_word:
        stripped = stripped[: -len(number_word)].rstrip(_SEPARATORS)
    return _ends_with_word(stripped, _NOT_SERIAL_BEFORE) is not None or after.lower().lstrip().startswith(
        _NOT_SERIAL_AFTER
    )


def canonical_serial(raw: str) -> str:
    """Drop digit-group separators and upper-case letters: "388'831" -> "388831"."""
    if raw.isdigit():
        return raw
    return re.sub(r"['., ]", "", raw).upper()


def _plausible_cued(value: str) -> bool:
    """A cue followed by "2 owners" or "ok" is no serial: ask for four digits, or five characters with a letter."""
    if value.isdigit():
        return len(value) >= 4
    digits = sum(c.isdigit() for c in value)
    return digits >= 4 or (digits >= 2 and len(value) >= 5)


def _bare_is_serial(text: str, start: int, end: int, after_name: bool = False) -> bool:
    return not _is_other_number(text[max(0, start - 24) : start], text[end : end + 12], after_name)


def _follows_name(text: str, start: int, name_ends: list[int]) -> bool:
    """Whether only a separator stands between a model name and `start` ("MS-20 730144", "MS-20 - 730144")."""
    at = bisect_right(name_ends, start)
    return at > 0 and start - name_ends[at - 1] <= 3 and not text[name_ends[at - 1] : start].strip(" -:(")


def _cue_word_positions(lowered: str) -> list[int]:
    """Where a cue word may start, in order."""
    positions = [m.start() for m in _S_CUE_WORD.finditer(lowered)]
    others = len(positions)
    for word in _OTHER_CUE_WORDS_ASCII if lowered.isascii() else _OTHER_CUE_WORDS:
        at = lowered.find(word)
        while at != -1:
            if word != "pla" or lowered.startswith(_PLATE_WORDS, at):  # not "play", "place", "plastic"
                positions.append(at)
            at = lowered.find(word, at + 1)
    if len(positions) > others:
        positions.sort()
    return positions


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    # A plain loop: any() over a generator costs a frame per call on this hot path.
    for s_start, s_end in spans:  # noqa: SIM110
        if start < s_end and s_start < end:
            return True
    return False


def _bare_at(text: str, start: int, end: int, after_name: bool = False) -> int | None:
    """The end of a bare serial starting at this digit run (144571, Swiss 388'831), or None."""
    if end - start == 3 and text[end : end + 1] == "'" and text[end + 1 : end + 4].isdigit():
        end += 4
        if text[end : end + 1].isdigit():
            return None
    elif end - start != 6:
        return None
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before.isalnum() or before in _BARE_BEFORE_FORBIDDEN or after.isalnum() or after in _BARE_AFTER_FORBIDDEN:
        return None
    if after in ".,'" and text[end + 1 : end + 2].isdigit():
        return None
    return end if _bare_is_serial(text, start, end, after_name) else None


def _cue_stands_alone(text: str, cue_start: int, cue: str) -> bool:
    """A cue must not be the end of another word ("plans/n", "usn"), though a plate may be a "nameplate"."""
    if cue_start > 0 and text[cue_start - 1].isascii() and text[cue_start - 1].isalpha():
        return cue[-5:].lower() == "plate"
    return True


def _number_cue_refused(lowered: str, cue_start: int, cue: str) -> bool:
    """A bare "No."/"Nr." after "order", "part", "Art.-" introduces another kind of number."""
    if cue.lower() not in _NUMBER_CUES:
        return False
    before = lowered[max(0, cue_start - 24) : cue_start].rstrip(_SEPARATORS)
    return _ends_with_word(before, _NOT_SERIAL_BEFORE_NUMBER_CUE) is not None


def _cued_candidates(text: str, lowered: str, cues: list[int], skip: list[tuple[int, int]],
                     field: Field, window: int = 60) -> list[SerialCandidate]:
    """Candidates introduced by a cue word, read only in windows around where a cue word occurs.

    A cue right before its number comes first; a plate sentence ("the plate on the rear says 377001") is read
    where no such cue gave the number.
    """
    found: list[SerialCandidate] = []
    covered = 0
    any_case = len(lowered) != len(text)
    for position in cues:
        if position < covered:
            continue
        span = (max(covered, position - 12), min(len(text), position + window))
        taken_here: list[tuple[int, int]] = []
        # A plate word opens only a plate sentence; a cue word, a cue right before its number first.
        readings = _PLATE_READING if lowered.startswith(_PLATE_WORDS, position) else _CUE_READINGS
        for regex, regex_any_case in readings:
            if taken_here:  # a cue right before its number: no plate sentence to look for here
                break
            matches = regex_any_case.finditer(text, *span) if any_case else regex.finditer(lowered, *span)
            for match in matches:
                cue_start = match.start("cue")
                cue = text[cue_start : match.end("cue")]
                start = match.start("value")
                value = text[start : match.end("value")].rstrip(".,'")
                end = start + len(value)
                if not _cue_stands_alone(text, cue_start, cue) or _number_cue_refused(lowered, cue_start, cue):
                    continue
                if taken_here and _inside(start, end, taken_here):
                    continue
                if regex is _WORDY:
                    if _is_other_number(text[max(0, start - 24) : start], text[end : end + 12], True):
                        continue
                    cue = text[cue_start:start].strip().rstrip(" :-([")
                if _plausible_cued(value) and not (skip and _inside(start, end, skip)):
                    found.append(new_serial_candidate(canonical_serial(value), value, field, start, end, cue))
                    taken_here.append((start, end))
                    covered = max(covered, end)
    if len(found) > 1:
        found.sort(key=lambda c: c.start)
    return found


def _after_name_candidates(text: str, name_ends: list[int], taken: list[tuple[int, int]],
                           field: Field) -> list[SerialCandidate]:
    """Five- and seven-digit numbers right after a model name in a title: wrong serials ("KR-55 25270")."""
    found = []
    for name_end in name_ends:
        match = _AFTER_NAME.match(text, name_end)
        if match is None:
            continue
        start, end = match.span("value")
        if taken and _inside(start, end, taken):
            continue
        if text[end : end + 1] in ".,'" and text[end + 1 : end + 2].isdigit():
            continue
        if not _is_other_number(text[max(0, start - 24) : start], text[end : end + 12], True):
            value = text[start:end]
            found.append(new_serial_candidate(value, value, field, start, end, None))
    return found


def extract_serial_candidates(
    text: str, field: Field, skip: list[tuple[int, int]] | None = None, *, cued_only: bool = False,
    lowered: str | None = None,
) -> list[SerialCandidate]:
    """Candidates in a normalised text, in order of position; spans index that same text.

    Cue-word candidates are read around the places a cue word occurs (found by one regex pass); hash and bare
    numbers from the runs of digits of a serial's length. `cued_only` skips the latter, for a body whose title
    already gave a serial. `skip` spans (model names) and URLs never yield a candidate. `lowered` is
    `text.lower()` when the caller has it already.
    """
    if lowered is None:
        lowered = text.lower()
    name_ends = sorted(end for _, end in skip) if skip else []
    skip = list(skip) if skip else []
    if "http" in lowered or "www." in lowered:
        skip += [m.span() for m in _URL.finditer(lowered)]
    if len(text) <= _SHORT_TEXT:  # a title: one regex pass is cheaper than looking for each cue word
        found = _cued_candidates(text, lowered, [0], skip, field, window=len(text)) if text else []
    else:
        cues = _cue_word_positions(lowered)
        found = _cued_candidates(text, lowered, cues, skip, field) if cues else []
    if cued_only:
        return found
    taken = [(c.start, c.end) for c in found] + skip if found else skip
    for run in _CANDIDATE_RUN.finditer(text):
        run_start, run_end = run.span()
        if taken and _inside(run_start, run_end, taken):
            continue
        length = run_end - run_start
        hash_before = text[run_start - 1 : run_start] == "#" or text[max(0, run_start - 2) : run_start] == "# "
        if hash_before and 4 <= length <= 8:
            hash_at = text.rfind("#", 0, run_start)
            if hash_at == 0 or not (text[hash_at - 1].isalnum() or text[hash_at - 1] in "&_"):
                value = text[run_start:run_end]
                found.append(new_serial_candidate(value, value, field, run_start, run_end, "#"))
                continue
        after_name = bool(name_ends) and _follows_name(text, run_start, name_ends)
        bare_end = _bare_at(text, run_start, run_end, after_name)
        if bare_end is not None:
            value = text[run_start:bare_end]
            found.append(new_serial_candidate(canonical_serial(value), value, field, run_start, bare_end, None))
    if name_ends and field == "title":
        found += _after_name_candidates(text, name_ends, taken, field)
    if len(found) > 1:
        found.sort(key=lambda c: c.start)
    return found
