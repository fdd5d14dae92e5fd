"""The seed register's notes about wrong serials, turned into listings the analyser must flag.

Each case quotes the seed's note, then gives a listing as Matrixsynth (or a seller) titled it, the model the
analyser must find, the flag code it must raise, the one-edit correction it must suggest first (where the
seed gives the right number and one edit reaches it) and a model whose blocks the wrong serial fits.

Seed notes a block rule CANNOT catch (the wrong serial still fits a block of the model, or the seed does
not say what the wrong number was), so they have no case here:
  - MS-10 footnote 7: "MS has wrong number (134937) in link & title" - 134937 fits 13nnnn.
  - SQ-10 footnote 4: "MS has wrong s/n (152097) in title" - fits 15nnnn.
  - VC-10 footnote 1: "The s/n (162214) in the MS link is wrong" - fits 16nnnn (and is in the link only).
  - MS-50 footnote 1: "I made this -117 but MS says -112" - both fit 19nnnn.
  - MS-50 footnote 2: "MS has the wrong s/n in the page title" - the number is not given.
  - MS-50 footnote 3: "Last digit missing" - the number is not given (it would be serial_wrong_length).
  - Lambda footnote 3: "MS has wrong s/n (231497) in title" - fits 23nnnn.
  - Lambda footnote 5: "MS has wrong s/n in title" - the number is not given.
  - Lambda footnote 2: "The MS url says this is a Sigma but it's a Lambda" - the url, not the title or text;
    the analyser reads title and body only (the Sigma-titled case below is the nearest a title can get).
  - KR-55 36nnnn footnote 1: "MS has wrong s/n (366784) in title" - fits 36nnnn.
  - KR-33 footnote 2: "MS has wrong s/n (260268) in title" - fits 26nnnn.
  - X-911 footnote 2: "MS has wrong s/n (272672) in title" - fits 27nnnn.
  - Mono/Poly footnote 2: "MS has wrong s/n (371557) in title" - fits 37nnnn.
  - Mono/Poly footnote 4: "MS page title has wrong s/n (373456)" - fits 37nnnn.
  - Mono/Poly footnote 11: "MS gives 371565 but I make it 377565" - both fit 37nnnn.
  - Trident footnotes 1 and 3: an obscured last digit - a reading question, not a wrong number.
  - MS-03 footnote 1, KPR-77 footnote 1 ("Might be 496090?"), EPS-1 footnote 1: unclear readings.
  - GT-6: "a handwritten number 32405 ... may be an inventory number" - not in a title; and a 5-digit
    number on a GT-6 would only be flagged for its length, which says nothing about the plate.
"""

from __future__ import annotations

import re

import pytest

from pipeline.analyse import analyse_listing
from pipeline.results import (
    FLAG_SERIAL_FORMAT_UNKNOWN,
    FLAG_SERIAL_OUTSIDE_BLOCKS,
    FLAG_SERIAL_WRONG_LENGTH,
    FLAG_TITLE_BODY_MISMATCH,
    Instrument,
    ListingAnalysis,
)
from pipeline.rules import Rules

OUTSIDE = FLAG_SERIAL_OUTSIDE_BLOCKS
LENGTH = FLAG_SERIAL_WRONG_LENGTH
FORMAT = FLAG_SERIAL_FORMAT_UNKNOWN
MISMATCH = FLAG_TITLE_BODY_MISMATCH

BODY = "Vintage Korg in good working order, see pictures. Ships worldwide."

# (seed note quoted, title, body, expected model, expected code, expected first suggestion or None,
#  a model expected in the flag's `models` or None)
SEED_NOTES = [
    (
        "MS-10 fn 2: MS has wrong s/n (730144) in title for a2.",
        "Korg MS-10 Vintage Analog Synthesizer SN 730144",
        BODY,
        "MS-10",
        OUTSIDE,
        None,
        "Poly-61",
    ),
    (
        "MS-10 fn 8: the title at Matrixsynth has the serial number 152817, which is not an MS-10 but an SQ-10",
        "Korg MS-10 Monophonic Analog Synth w/ Original Box SN 152817",
        BODY,
        "MS-10",
        OUTSIDE,
        None,
        "SQ-10",
    ),
    (
        "MS-10 fn 10: MS has the wrong serial number (1703C036) in the link and title.",
        "Korg MS-10 Semi-Modular Synthesizer SN 1703C036",
        BODY,
        "MS-10",
        FORMAT,
        None,
        None,
    ),
    (
        "MS-10 fn 1: with MS-20 439057 (MS has the MS-10 s/n in the title which however refers to the MS-20)",
        "Korg MS-10 Synthesizer SN 439057",
        BODY,
        "MS-10",
        OUTSIDE,
        None,
        "MS-20",
    ),
    (
        "MS-50 fn 4: MS page title has wrong s/n (90339).",
        "Korg MS-50 Modular Synthesizer SN 90339",
        BODY,
        "MS-50",
        LENGTH,
        "190339",
        None,
    ),
    (
        "Lambda fn 1: MS has 23120 in title, missing 1.",
        "Korg Lambda ES-50 Polyphonic Ensemble SN 23120",
        BODY,
        "Lambda",
        LENGTH,
        None,
        None,
    ),
    (
        "Lambda fn 4: MS has wrong s/n (23887) in title.",
        "Korg Λ Lambda ES-50 String Machine SN 23887",
        BODY,
        "Lambda",
        LENGTH,
        None,
        None,
    ),
    (
        "Lambda fn 2: The MS url says this is a Sigma but it's a Lambda.",
        "Korg Sigma KP-30 Vintage Analog Synthesizer SN 234519",
        BODY,
        "Sigma",
        OUTSIDE,
        None,
        "Lambda",
    ),
    (
        "Sigma 24nnnn (brief): The MS title and url say Lambda but it's a Sigma.",
        "Korg Lambda ES-50 Vintage Polyphonic Keyboard SN 241633",
        BODY,
        "Lambda",
        OUTSIDE,
        None,
        "Sigma",
    ),
    (
        "Sigma 0nnn fn 1 (where the seed puts it): The MS title and url say Lambda but it's a Sigma.",
        "Korg Lambda Vintage Analog Keyboard SN 0736",
        BODY,
        "Lambda",
        LENGTH,
        None,
        "Sigma",
    ),
    (
        "KR-55 fn 1: MS has wrong s/n (25270) in title.",
        "Korg KR-55 Rhythm 55 Analog Drum Machine SN 25270",
        BODY,
        "KR-55",
        LENGTH,
        None,
        None,
    ),
    (
        "X-911 fn 1: MS has wrong s/n (888825) in title and text",
        "Korg X-911 Guitar Synthesizer SN 888825",
        BODY,
        "X-911",
        OUTSIDE,
        None,
        "SAS-20",
    ),
    (
        "X-911 fn 1: The listing states SN 271228, but if you look at the bottom pic, you'll see 888825.",
        "Korg X-911 Guitar Synthesizer SN 888825",
        "Dealer listing. The listing states SN 271228, but the bottom picture shows 888825.",
        "X-911",
        MISMATCH,
        "271228",
        None,
    ),
    (
        "Trident fn 2: The MS title on appearance 2 says it's s/n 045692. Which it isn't.",
        "Korg Trident Polyphonic Synthesizer SN 045692",
        BODY,
        "Trident",
        OUTSIDE,
        None,
        None,
    ),
    (
        "Mono/Poly fn 3: Difficult to read s/n; MS gives 072618 but it must be 372618.",
        "Korg Mono/Poly Analog Synthesizer SN 072618",
        BODY,
        "Mono/Poly",
        OUTSIDE,
        "372618",
        None,
    ),
    (
        "Mono/Poly fn 6: MS has wrong s/n (873463) in title.",
        "Korg Mono/Poly MP-4 Synth SN 873463",
        BODY,
        "Mono/Poly",
        OUTSIDE,
        None,
        "SAS-20",
    ),
    (
        "Mono/Poly fn 8: MS has wrong s/n (237991) in title.",
        "Korg Mono/Poly Vintage Analog Synthesizer SN 237991",
        BODY,
        "Mono/Poly",
        OUTSIDE,
        None,
        "Lambda",
    ),
    (
        "Mono/Poly fn 9: MS has wrong s/n (275545) in title.",
        "Korg Mono/Poly Analog Synth SN 275545",
        BODY,
        "Mono/Poly",
        OUTSIDE,
        None,
        "X-911",
    ),
    (
        "Mono/Poly fn 10: s/n wrong (075738) in MS title.",
        "Korg Mono/Poly MP-4 Synthesizer SN 075738",
        BODY,
        "Mono/Poly",
        OUTSIDE,
        None,
        None,
    ),
    (
        "PolySix 38nnnn fn 1: MS has wrong s/n (3809004) in title.",
        "Korg Polysix PS-6 Analog Polyphonic Synthesizer SN 3809004",
        BODY,
        "PolySix",
        LENGTH,
        None,
        None,
    ),
    (
        "PolySix 38nnnn fn 4: MS has wrong s/n (186971) in title.",
        "Korg Polysix Vintage Analog Synth SN 186971",
        BODY,
        "PolySix",
        OUTSIDE,
        "386971",
        "MS-03",
    ),
    (
        "PolySix 39nnnn fn 2: MS has wrong s/n (ZU72723) in the article text",
        "Korg Polysix Vintage Analog Polyphonic Synthesizer",
        "Fully serviced, new battery, no leakage. S/N ZU72723. Local pickup preferred.",
        "PolySix",
        FORMAT,
        None,
        None,
    ),
    (
        "PolySix 46nnnn fn 1: MS has wrong s/n (456042) in title.",
        "Korg Polysix Analog Synthesizer SN 456042",
        BODY,
        "PolySix",
        OUTSIDE,
        "466042",
        "KPR-77",
    ),
]


def _only_instrument(result: ListingAnalysis, model: str) -> Instrument:
    assert [i.model for i in result.instruments] == [model], result.to_dict()
    return result.instruments[0]


@pytest.mark.parametrize(
    ("note", "title", "body", "model", "code", "suggestion", "other_model"),
    SEED_NOTES,
    ids=[f"{case[3]}-{case[1].rsplit(' ', 1)[-1]}-{case[4]}" for case in SEED_NOTES],
)
def test_seed_note_is_flagged(
    rules: Rules,
    note: str,
    title: str,
    body: str,
    model: str,
    code: str,
    suggestion: str | None,
    other_model: str | None,
) -> None:
    instrument = _only_instrument(analyse_listing(title, body, rules), model)
    flags = {f.code: f for f in instrument.flags}
    assert code in flags, f"{note}\n  expected {code}, got {instrument.to_dict()}"
    flag = flags[code]
    if suggestion is not None:
        assert flag.suggestions and flag.suggestions[0] == suggestion, f"{note}\n  {flag.to_dict()}"
    if other_model is not None:
        assert other_model in flag.models, f"{note}\n  {flag.to_dict()}"


# --- no instrument: reissues, later products, other makes ---------------------------------------------

NOT_VINTAGE = [
    "Korg MS-20 mini Monophonic Analog Synthesizer SN 144571",
    "Korg MS-20 FS Full Size Reissue Synthesizer Serial 1500123",
    "KORG MS-20M Kit with SQ-1 sequencer, SN 1702345",
    "Korg MS-20 Kit (2020) limited edition SN 140518",
    "Korg MS-20 iC controller + iMS-20 app SN 144571",
    "Korg MS-20 Legacy Collection controller SN 144571",
    "Korg MS2000 Analog Modeling Synthesizer SN 012345",
    "Korg MS2000R rack module SN 373101",
    "Korg MS2000B black SN 380123",
    "Korg microKORG Synthesizer/Vocoder SN 160449",
    "Korg Poly-800 Synthesizer SN 702650",
    "Korg Poly-61M MIDI Synthesizer SN 702650",
    "Korg iPolysix for iPad - Polysix plugin licence SN 385072",
    "Korg KR-55 Pro Rhythm Machine SN 251234",
    "Korg CX-3 V2 Digital Combo Organ SN 320781",
    "Korg digital CX-3 organ (2001) SN 321129",
    "Korg new CX-3 organ SN 002345",
    "Korg digital BX-3 dual manual organ SN 340069",
    "Korg SDD-3000 PDL Digital Delay Pedal SN 441357",
    "Korg SDD-3000 pedal delay SN 441357",
    "Korg volca keys analog synth SN 370245",
    "Korg minilogue xd SN 372618",
    "Korg monologue mono synth SN 372618",
    "Korg ARP Odyssey FS reissue SN 271228",
    "Korg Collection 4 MS-20 plugin licence SN 144571",
    "Korg PS-3100 Polyphonic Synthesizer SN 811016",
    "Korg PS-3300 SN 790123",
    "Korg PS-3010 keyboard SN 811016",
    "Korg Maxi-Korg 800DV duophonic synthesizer SN 760123",
    "Korg miniKORG 700S SN 740123",
    "Korg Mini Pops 3 rhythm machine SN 702650",
    "Korg Polyphonic Ensemble PE-2000 SN 790345",
    "Behringer K-2 MS-20 clone SN 1412345",
    "Behringer MS-1 Analog Synthesizer SN 190339",
    "Boss GT-6 Guitar Multi-Effects Processor SN 140518",
    "Zoom MS-50G MultiStomp SN 190339",
    "Arturia MS-20 V plugin SN 144571",
    "Roland SH-101 (not a Korg MS-10 clone) SN 134458",
    "Behringer Polysix-style synth SN 385072",
]


@pytest.mark.parametrize("title", NOT_VINTAGE)
def test_not_vintage_titles_give_no_instrument(rules: Rules, title: str) -> None:
    result = analyse_listing(title, "", rules)
    assert result.instruments == (), result.to_dict()


def _exclusion_titles(rules: Rules) -> list[tuple[str, str]]:
    titles = []
    for exclusion in rules.exclusions:
        for alias in (exclusion.name, *exclusion.aliases):
            own_make = exclusion.reason == "other make" or alias.casefold().startswith("korg")
            prefix = "" if own_make else "Korg "
            titles.append((exclusion.name, f"{prefix}{alias} for sale, SN 144571"))
    return titles


def test_every_exclusion_alias_in_a_title_gives_no_instrument(rules: Rules) -> None:
    failures = []
    for name, title in _exclusion_titles(rules):
        result = analyse_listing(title, "", rules)
        if result.instruments or not result.excluded:
            failures.append((name, title, [i.model for i in result.instruments], result.excluded))
    assert not failures, failures


# --- multilingual listings with good serials ----------------------------------------------------------

MULTILINGUAL = [
    (
        "Korg MS-20 Analog Synthesizer, Seriennummer 144571",
        "Verkaufe meinen Korg MS-20 in sehr gutem Zustand. Seriennummer 144571, Versand möglich.",
        "MS-20",
        "144571",
    ),
    (
        "Korg Polysix Synthesizer, Seriennummer 388'831",
        "220V-Gerät aus der Schweiz, Batterie ersetzt.",
        "PolySix",
        "388831",
    ),
    (
        "Korg Polysix synthétiseur analogique vintage, numéro de série 385072",
        "Très bon état, révisé. Numéro de série 385072.",
        "PolySix",
        "385072",
    ),
    (
        "Korg Mono/Poly sintetizzatore analogico, numero di serie 370245",
        "Perfettamente funzionante, numero di serie 370245.",
        "Mono/Poly",
        "370245",
    ),
    (
        "Korg SQ-10 sequencer analogico, matricola 151949",
        "Sequencer in ottime condizioni, matricola 151949.",
        "SQ-10",
        "151949",
    ),
    (
        "Korg MS-10 sintetizador analógico, número de serie 134458",
        "Funciona perfectamente. Número de serie 134458.",
        "MS-10",
        "134458",
    ),
    (
        "KORG コルグ MS-20 アナログシンセサイザー 製造番号 １４４５７１",
        "動作確認済みです。製造番号：１４４５７１。",
        "MS-20",
        "144571",
    ),
    (
        "KORG Polysix ポリフォニック シンセサイザー シリアル ３９０２１８",
        "メンテナンス済み。シリアルNo.３９０２１８",
        "PolySix",
        "390218",
    ),
    ("Korg Delta DL-50 Synthesizer SN 283648", BODY, "Delta", "283648"),
    ("Korg Sigma KP-30 synthesizer, s/n 0736 (100V Japan model)", BODY, "Sigma", "0736"),
]


@pytest.mark.parametrize(
    ("title", "body", "model", "serial"),
    MULTILINGUAL,
    ids=[f"{m}-{s}-{i}" for i, (_, _, m, s) in enumerate(MULTILINGUAL)],
)
def test_multilingual_good_serial(rules: Rules, title: str, body: str, model: str, serial: str) -> None:
    instrument = _only_instrument(analyse_listing(title, body, rules), model)
    assert instrument.serial == serial
    assert instrument.flags == (), instrument.to_dict()
    assert instrument.fits


# --- every name of every model, with a good serial ----------------------------------------------------


def _key(name: str) -> str:
    """Names the analyser treats as one: case, spaces, hyphens, slashes and dots do not count."""
    return re.sub(r"[\s\-/.]+", "", name).casefold()


def _alias_titles(rules: Rules) -> list[tuple[str, str, str, bool]]:
    """(model, alias, a serial of its main block, whether the alias counts only with Korg)."""
    cases = []
    for model in rules.models.values():
        block = model.blocks[0]
        serial = str(block.lowest + 1234).zfill(block.length)
        # A korg-only alias holds for every spelling of it, but a name written exactly as one of the model's
        # own names ("Mono/Poly" beside the korg-only "Monopoly") counts alone.
        korg_only = {_key(a) for a in model.korg_only_aliases}
        korg_only_exact = {a.casefold() for a in model.korg_only_aliases}
        own_exact = {a.casefold() for a in (model.name, *model.aliases)} - korg_only_exact
        for alias in dict.fromkeys((model.name, *model.aliases, *model.korg_only_aliases)):
            only = _key(alias) in korg_only and alias.casefold() not in own_exact
            cases.append((model.name, alias, serial, only))
    return cases


def test_every_alias_names_its_model(rules: Rules) -> None:
    failures = []
    for model, alias, serial, korg_only in _alias_titles(rules):
        for title, counts in (
            (f"Korg {alias} vintage SN {serial}", True),
            (f"{alias} vintage SN {serial}", not korg_only),
        ):
            result = analyse_listing(title, "", rules)
            got = [(i.model, i.serial, [f.code for f in i.flags]) for i in result.instruments]
            if got != ([(model, serial, [])] if counts else []):
                failures.append((title, got))
    assert not failures, failures
