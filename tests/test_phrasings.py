"""The phrasings real listings use (issue 12's classes), each with examples of our own and its refusals.

Expectations are written from the number blocks in config/models.yaml, never from the analyser's output:
MS-10 13nnnn (from 130000), MS-20 14nnnn/439nnn, SQ-10 15nnnn, Lambda 23nnnn, Sigma 24nnnn/0nnn, Trident
33nnnn, Mono/Poly 37nnnn/47nnnn, PolySix 38nnnn/39nnnn/46nnnn, Poly-61 7nnnnn.
"""

from __future__ import annotations

import pytest

from pipeline.analyse import analyse_listing
from pipeline.results import (
    FLAG_SERIAL_OUTSIDE_BLOCKS,
    FLAG_SERIAL_WRONG_LENGTH,
    FLAG_TITLE_BODY_MISMATCH,
    ListingAnalysis,
)
from pipeline.rules import Rules

OUTSIDE = FLAG_SERIAL_OUTSIDE_BLOCKS
LENGTH = FLAG_SERIAL_WRONG_LENGTH
MISMATCH = FLAG_TITLE_BODY_MISMATCH

Expected = list[tuple[str, str | None, list[str]]]


def summary(analysis: ListingAnalysis) -> Expected:
    return [(i.model, i.serial, sorted(f.code for f in i.flags)) for i in analysis.instruments]


def check(rules: Rules, title: str, body: str, expected: Expected) -> ListingAnalysis:
    analysis = analyse_listing(title, body, rules)
    assert summary(analysis) == expected, (title, body)
    return analysis


# --- 1. a bare serial right after a model name ------------------------------------------------------------


def test_the_issue_headline_case_names_poly_61(rules: Rules) -> None:
    analysis = check(rules, "Korg MS-20 730144", "", [("MS-20", "730144", [OUTSIDE])])
    (flag,) = analysis.instruments[0].flags
    assert "Poly-61" in flag.models


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Korg MS-10 138812", [("MS-10", "138812", [])]),
        ("KORG MS20 145201 w/ case", [("MS-20", "145201", [])]),
        ("korg ms-20 145201", [("MS-20", "145201", [])]),
        ("Korg Poly-61 711902 — tested", [("Poly-61", "711902", [])]),
        ("Korg Lambda ES-50 231877", [("Lambda", "231877", [])]),
        ("Korg SQ-10 150771", [("SQ-10", "150771", [])]),
        ("KORG POLYSIX 384412 serviced", [("PolySix", "384412", [])]),
        ("Korg MS-20 141567 1978 vintage analog synth", [("MS-20", "141567", [])]),
        ("Korg MS-20 730144 - works", [("MS-20", "730144", [OUTSIDE])]),
        ("Korg SQ-10 138812", [("SQ-10", "138812", [OUTSIDE])]),
        ("Korg Poly-61 71190", [("Poly-61", "71190", [LENGTH])]),
    ],
)
def test_bare_serial_after_the_model_name(rules: Rules, title: str, expected: Expected) -> None:
    check(rules, title, "", expected)


@pytest.mark.parametrize(
    "title",
    [
        "Korg MS-20 $145,000",  # a price, however silly
        "Korg MS-20 150000円",
        "Korg MS-20 150 000 yen",
        "Korg MS-20 call 0171 234567",
        "Korg MS-20 tel. 555 123456",
        "Korg MS-20 item 384512",
        "Korg MS-20 eBay item 123456789012",
        "Korg MS-20 12/03/1982",
        "Korg MS-20 1978-1983 synth",
        "Korg MS-20, order no. 143002",
        "Korg MS-20 Art.-Nr. 143002",
        "Korg MS-20 https://example.com/item/145201",
    ],
)
def test_numbers_after_a_model_name_that_are_not_serials(rules: Rules, title: str) -> None:
    check(rules, title, "", [("MS-20", None, [])])


# --- 2. cues with brackets and punctuation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "serial"),
    [
        ("Korg Poly-61 (s/n 712004)", "712004"),
        ("Korg Poly-61 s/n (712004)", "712004"),
        ("Korg Poly-61 s/n: (712004)", "712004"),
        ("Korg Poly-61 [serial: 712004]", "712004"),
        ("Korg Poly-61 S/N. 712004", "712004"),
        ("Korg Poly-61 ser. no. 712004", "712004"),
        ("Korg Poly-61 serial # 712004", "712004"),
        ("Korg Poly-61 No. 712004", "712004"),
        ("Korg Poly-61 Nr. 712004", "712004"),
        ("Korg Poly-61 Ser.-Nr. 712004", "712004"),
        ("KORG Poly-61 製造番号:712004", "712004"),
        ("KORG Poly-61 製造番号：７１２００４", "712004"),
        ("KORG Poly-61 シリアルNo.712004", "712004"),
        ("KORG Poly-61 シリアルナンバー 712004", "712004"),
        ("Korg Poly-61 serienummer 712004", "712004"),
        ("Korg Poly-61 numer seryjny 712004", "712004"),
        ("Korg Poly-61 número de série 712004", "712004"),
        ("Korg Poly-61 n° de série 712004", "712004"),
        ("Korg Poly-61 numero seriale 712004", "712004"),
    ],
)
def test_cues_with_brackets_and_punctuation(rules: Rules, title: str, serial: str) -> None:
    analysis = check(rules, title, "", [("Poly-61", serial, [])])
    assert analysis.instruments[0].serial_candidate.cue  # type: ignore[union-attr]


def test_a_number_cue_takes_a_short_serial_too(rules: Rules) -> None:
    check(rules, "Korg MS-20 No. 14300", "", [("MS-20", "14300", [LENGTH])])


# --- 3. plate sentences --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [
        ("Korg MS-20 145201", "Serial no. on the back plate: 143390", [("MS-20", "145201", [MISMATCH])]),
        ("Korg Mono/Poly 371557", "The plate on the rear says 377001.", [("Mono/Poly", "371557", [MISMATCH])]),
        ("Korg MS-10", "The number plate underneath shows 138010.", [("MS-10", "138010", [])]),
        ("Korg Polysix", "Seriennummer auf dem Typenschild: 389420", [("PolySix", "389420", [])]),
        ("Korg MS-20", "numéro de série (plaque arrière) 148211", [("MS-20", "148211", [])]),
        ("Korg MS-20 730144", "The serial on the rear plate is 144512.", [("MS-20", "144512", [MISMATCH])]),
        ("Korg Polysix 384412", "Serial plate reads 384412, all original.", [("PolySix", "384412", [])]),
    ],
)
def test_plate_sentences(rules: Rules, title: str, body: str, expected: Expected) -> None:
    check(rules, title, body, expected)


def test_a_plate_sentence_is_shown_as_a_cued_body_serial(rules: Rules) -> None:
    analysis = check(rules, "Korg MS-20 145201", "Serial no. on the back plate: 143390",
                     [("MS-20", "145201", [MISMATCH])])
    body = [c for c in analysis.instruments[0].candidates if c.field == "body"]
    assert [(c.serial, c.raw) for c in body] == [("143390", "143390")]
    assert body[0].cue is not None and "plate" in body[0].cue.lower()


def test_a_plate_sentence_about_another_model_in_the_body_is_not_a_mismatch(rules: Rules) -> None:
    # 702650 is a Poly-61 number (7nnnnn) and follows the Poly-61's name: it is that unit's plate.
    check(rules, "Korg MS-20 Synthesizer SN 144571", "Also for sale: a Korg Poly-61, its plate reads 702650.",
          [("MS-20", "144571", [])])


@pytest.mark.parametrize(
    "body",
    [
        "The serial number plate is missing. Asking 145000 yen.",
        "Serial plate missing, price 1450 EUR, call 0171 234567.",
        "The back plate has a dent; shipped in 2 boxes.",
    ],
)
def test_plate_sentences_without_a_serial(rules: Rules, body: str) -> None:
    check(rules, "Korg MS-20", body, [("MS-20", None, [])])


# --- 4. accessories and parts anywhere in the title ---------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "Korg MS-20 original wooden side panels",
        "Korg Polysix chassis with keyboard, no boards",
        "KORG MS-20 Synthesizer Flight Case",
        "Korg MS-20 front panel",
        "Korg Mono/Poly power supply board KLM-???",
        "Korg MS-10 replacement keys (set of 32)",
        "Korg Polysix knob set 20 pcs",
        "Korg MS-20 Service Notes",
        "Korg Sigma KP-30 gig bag",
        "Korg Poly-61 keyboard stand",
        "Korg Polysix KLM-367 PCB",
        "Korg Polysix parts: knobs, keys, sliders",
        "Korg MS-20 patch cables (set of 10)",
        "Korg Trident owner's manual",
        "Vintage Korg MS-20 body shell only",
        "Korg MS-20 end cheeks / wood sides",
        "Original hard case Korg MS-20",
    ],
)
def test_accessories_and_parts_anywhere_in_the_title(rules: Rules, title: str) -> None:
    assert analyse_listing(title, "", rules).instruments == ()


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Korg MS-20 with hard case and manual", [("MS-20", None, [])]),
        ("Korg MS-20 w/ case, patch cables, manual s/n 145201", [("MS-20", "145201", [])]),
        ("Korg Polysix for parts or repair", [("PolySix", None, [])]),
        ("Korg MS-20 in flight case", [("MS-20", None, [])]),
        ("Korg MS-20 incl. patch cables + manual", [("MS-20", None, [])]),
        ("Korg Polysix + case + stand", [("PolySix", None, [])]),
        ("KORG MS-20 ケース付き", [("MS-20", None, [])]),
    ],
)
def test_an_instrument_with_its_accessories_is_still_an_instrument(rules: Rules, title: str,
                                                                   expected: Expected) -> None:
    check(rules, title, "", expected)


# --- 5. reissues named in the body ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "excluded"),
    [
        ("Selling my MS-20 Mini, barely used.", "MS-20 mini"),
        ("The one pictured is my MS-20 mini, boxed.", "MS-20 mini"),
        ("Built from the MS-20 Kit in 2020, works perfectly.", "MS-20M Kit"),
        ("This is the MS-20 FS (full size reissue).", "MS-20 FS"),
        ("It's an MS-20 M with the module case.", "MS-20M Kit"),
    ],
)
def test_a_reissue_named_in_the_body_is_not_vintage(rules: Rules, body: str, excluded: str) -> None:
    analysis = analyse_listing("Korg MS-20 analog synthesizer", body, rules)
    assert analysis.instruments == ()
    assert excluded in analysis.excluded


def test_the_reissue_described_without_its_name(rules: Rules) -> None:
    analysis = analyse_listing("Korg MS-20", "It is the 86 % size reissue, not a vintage one.", rules)
    assert analysis.instruments == ()
    assert analysis.excluded


@pytest.mark.parametrize(
    "body",
    [
        "Much better sound than the MS-20 mini. Serial 145201.",
        "Unlike the reissue, this one has the original filter. Serial 145201.",
        "I also have an MS-20 mini for sale in another listing. Serial 145201.",
    ],
)
def test_a_reissue_only_compared_leaves_the_vintage_unit(rules: Rules, body: str) -> None:
    check(rules, "Korg MS-20 vintage 1978", body, [("MS-20", "145201", [])])


# --- 6. several units of one model ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Pair of Korg Polysixes, s/n 383001 and 460133", [("PolySix", "383001", []), ("PolySix", "460133", [])]),
        ("2x Korg MS-20 (141001, 145502)", [("MS-20", "141001", []), ("MS-20", "145502", [])]),
        ("Lot of three Korg MS-10: 130554, 131220, 134001",
         [("MS-10", "130554", []), ("MS-10", "131220", []), ("MS-10", "134001", [])]),
        ("Korg MS-20 x2 s/n 144571 & 439057", [("MS-20", "144571", []), ("MS-20", "439057", [])]),
        ("Two Korg Polysix synths 383001 / 730144", [("PolySix", "383001", []), ("PolySix", "730144", [OUTSIDE])]),
        ("Korg MS-20s: 141001 and 145502", [("MS-20", "141001", []), ("MS-20", "145502", [])]),
    ],
)
def test_several_units_of_one_model(rules: Rules, title: str, expected: Expected) -> None:
    check(rules, title, "", expected)


def test_one_unit_with_two_numbers_stays_one_instrument(rules: Rules) -> None:
    check(rules, "Korg MS-20 730144", "The plate on the back reads 144512.", [("MS-20", "144512", [MISMATCH])])


def test_a_pair_without_serials_is_one_model_entry(rules: Rules) -> None:
    check(rules, "Pair of Korg MS-20", "Both work.", [("MS-20", None, [])])


# --- 7. plurals, nicknames and scripts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Korg Polysixes wanted", [("PolySix", None, [])]),
        ("Korg P6 384412", [("PolySix", "384412", [])]),
        ("Korg Mono Poly 372001", [("Mono/Poly", "372001", [])]),
        ("Korg Monopoly 372001", [("Mono/Poly", "372001", [])]),
        ("Korg λ ES-50 231877", [("Lambda", "231877", [])]),
        ("ＫＯＲＧ　ＭＳ－２０　１４５２０１", [("MS-20", "145201", [])]),
        ("コルグ ポリシックス 製造番号384412", [("PolySix", "384412", [])]),
        ("コルグポリシックス 384412", [("PolySix", "384412", [])]),
        ("KORG ポリ6 シリアル 384412", [("PolySix", "384412", [])]),
        ("コルグ モノポリ 372001 動作品", [("Mono/Poly", "372001", [])]),
        ("KORG ラムダ ES-50", [("Lambda", None, [])]),
        ("KORG シグマ KP-30 241234", [("Sigma", "241234", [])]),
        ("KORG トライデント 331792", [("Trident", "331792", [])]),
        ("Korg MS-20s for sale", [("MS-20", None, [])]),
        ("Korg Sigmas and Lambdas", [("Sigma", None, []), ("Lambda", None, [])]),
    ],
)
def test_plurals_nicknames_and_scripts(rules: Rules, title: str, expected: Expected) -> None:
    check(rules, title, "", expected)


def test_katakana_names_need_korg_where_the_word_is_ordinary(rules: Rules) -> None:
    assert analyse_listing("ラムダ 231877", "", rules).instruments == ()


# --- found on the real-text corpus (tests/fixtures/real/) -----------------------------------------------


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [
        # The canonical name written exactly counts alone, though its key is also the korg-only "Monopoly".
        ("Mono/Poly / MP-4 (4-voice unitary keyboard synthesiser)", "MS has wrong s/n (371557) in title.",
         [("Mono/Poly", "371557", [])]),
        # A bare number right after a model name in the body: the name's digits are no phone-number group.
        ("Korg MS-10", "Duplicate sale - see Korg Duplicate Sales, MS-10 134458", [("MS-10", "134458", [])]),
        ("Korg MS-10", "Call 0171 134458 after six.", [("MS-10", None, [])]),
        # Several bare numbers and no cue: a range or other units, none of them this one's.
        ("SQ-10 (step sequencer)", "the ends changed between 151215 and 151238.", [("SQ-10", None, [])]),
        # An accessory word that is part of the model's own kind ("control interface") is no accessory.
        ("MS-03 (control interface)", "", [("MS-03", None, [])]),
        # An accessory word followed by a repair: the unit is the subject.
        ("Korg Polysix Battery Repair", "", [("PolySix", None, [])]),
        ("Korg Poly-61 - Battery Leak Repair", "", [("Poly-61", None, [])]),
        ("Old Crow's Synth Shop: Korg Polysix Upgrade & Repair Overview", "", [("PolySix", None, [])]),
        # No title: the body's first model counts, unless its reissue is named before it.
        ("", "So you have the Korg MS20 legacy controller. It is not a Korg MS-20, just a MIDI controller.", []),
        ("", "I bought a Korg MS-20 in 1981; the MS-20 mini came much later.", [("MS-20", None, [])]),
    ],
)
def test_phrasings_found_on_the_real_corpus(rules: Rules, title: str, body: str, expected: Expected) -> None:
    check(rules, title, body, expected)


@pytest.mark.parametrize(
    "title",
    [
        "Test du Monopoly de Behringer : Les cartes rebattues",  # another make's, named after it
        "Korg KPR-77 MIDI Interface",
        "Classic KORG Polysix, Reimagined for iPad",
        "MS20 MKII Multimode Resonant Filter for Eurorack Synthesizers",
        "Korg PolySix MIDI-Erweiterung",
    ],
)
def test_titles_found_on_the_real_corpus_that_name_no_vintage_unit(rules: Rules, title: str) -> None:
    assert analyse_listing(title, "", rules).instruments == ()
