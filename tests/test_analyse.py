"""The analyser: models, serials, flags and suggestions for whole listings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analyse import analyse_listing
from pipeline.results import (
    FLAG_SERIAL_FORMAT_UNKNOWN,
    FLAG_SERIAL_OUTSIDE_BLOCKS,
    FLAG_SERIAL_WRONG_LENGTH,
    FLAG_TITLE_BODY_MISMATCH,
)
from pipeline.rules import Rules


def codes(instrument) -> list[str]:
    return [f.code for f in instrument.flags]


def test_the_readme_example_names_poly_61(rules: Rules) -> None:
    (ms20,) = analyse_listing("Korg MS-20 SN 730144", "", rules).instruments
    assert ms20.model == "MS-20"
    assert ms20.serial == "730144"
    (flag,) = ms20.flags
    assert flag.code == FLAG_SERIAL_OUTSIDE_BLOCKS
    assert "Poly-61" in flag.models
    assert "Poly-61" in flag.message and "MS-20" in flag.message


@pytest.mark.parametrize(
    ("title", "model", "serial"),
    [
        ("Korg MS-20 Analog Synthesizer SN 144571", "MS-20", "144571"),
        ("KORG MS20 s/n 439057", "MS-20", "439057"),
        ("Korg Polysix 388'831 (Swiss 220V)", "PolySix", "388831"),
        ("Korg Mono/Poly MP-4 Vintage Analog Synth Serial # 372618", "Mono/Poly", "372618"),
        ("KORG MS-10 Monophonic Synth Vintage 1978 Serial No. 134458", "MS-10", "134458"),
        ("KORG MS-20 アナログシンセサイザー 製造番号１４４５７１ 動作品", "MS-20", "144571"),
        ("Korg Sigma KP-30 s/n 0745", "Sigma", "0745"),
        ("Korg Δ DL-50 SN 283648", "Delta", "283648"),
        ("Korg Trident MkII SN 410123", "Trident II", "410123"),
        ("Korg Poly 61 SN 702650", "Poly-61", "702650"),
    ],
)
def test_good_serials_raise_no_flag(rules: Rules, title: str, model: str, serial: str) -> None:
    (instrument,) = analyse_listing(title, "", rules).instruments
    assert (instrument.model, instrument.serial, instrument.flags) == (model, serial, ())
    assert instrument.fits


def test_span_points_at_the_serial_in_the_original_title(rules: Rules) -> None:
    title = "KORG MS-20 製造番号：１４４５７１ 動作品"
    (instrument,) = analyse_listing(title, "", rules).instruments
    candidate = instrument.serial_candidate
    assert candidate is not None
    assert title[candidate.start : candidate.end] == "１４４５７１"


def test_serial_only_in_body(rules: Rules) -> None:
    analysis = analyse_listing(
        "Korg MS-20 (early IC35 filter) - back on the site", "Seriennummer 141567", rules
    )
    (instrument,) = analysis.instruments
    assert instrument.serial == "141567"
    assert instrument.serial_candidate is not None and instrument.serial_candidate.field == "body"
    assert instrument.flags == ()


def test_model_digits_are_never_a_serial(rules: Rules) -> None:
    (instrument,) = analyse_listing("Korg PS-3200 programmable polyphonic", "", rules).instruments
    assert instrument.serial is None


def test_wrong_length_with_suggestion(rules: Rules) -> None:
    (ms50,) = analyse_listing("Korg MS-50 Modular Synthesizer SN 90339", "", rules).instruments
    assert codes(ms50) == [FLAG_SERIAL_WRONG_LENGTH]
    assert "190339" in ms50.flags[0].suggestions


def test_outside_blocks_suggests_one_edit_fix_first(rules: Rules) -> None:
    (monopoly,) = analyse_listing("Korg Mono/Poly s/n 072618", "", rules).instruments
    assert codes(monopoly) == [FLAG_SERIAL_OUTSIDE_BLOCKS]
    assert monopoly.flags[0].suggestions[0] == "372618"


def test_format_unknown(rules: Rules) -> None:
    (polysix,) = analyse_listing("Korg Polysix s/n ZU72723", "", rules).instruments
    assert codes(polysix) == [FLAG_SERIAL_FORMAT_UNKNOWN]


def test_title_body_mismatch_records_the_serial_that_fits(rules: Rules) -> None:
    (ms20,) = analyse_listing(
        "Korg MS-20 SN 730144", "Serial number: 141567 on the back plate", rules
    ).instruments
    assert ms20.serial == "141567"
    assert codes(ms20) == [FLAG_TITLE_BODY_MISMATCH]


def test_title_and_body_agreeing_is_no_mismatch(rules: Rules) -> None:
    (ms20,) = analyse_listing("Korg MS-20 SN 144571", "S/N 144571, fully serviced", rules).instruments
    assert ms20.flags == ()


def test_bundle_yields_each_instrument_with_its_serial(rules: Rules) -> None:
    analysis = analyse_listing("Korg MS-50 + SQ-10 SN 190891 / 152730", "", rules)
    assert [(i.model, i.serial, i.flags) for i in analysis.instruments] == [
        ("MS-50", "190891", ()),
        ("SQ-10", "152730", ()),
    ]


@pytest.mark.parametrize(
    "title",
    [
        "Korg MS-20 mini SN 144571",
        "Korg MS-20 FS Blue s/n 144571",
        "Korg MS-20M kit",
        "Korg MS2000 s/n 143211",
        "Korg microKORG serial 123456",
        "Korg Poly-800 SN 144571",
        "Behringer K-2 (MS-20 clone)",
        "Roland SH-101 s/n 144571",
        "Delta shipping box, Trident console",
    ],
)
def test_reissues_and_other_makes_are_not_vintage(rules: Rules, title: str) -> None:
    assert analyse_listing(title, "", rules).instruments == ()


def test_korg_only_aliases_need_korg(rules: Rules) -> None:
    assert analyse_listing("Sigma guitar 1979", "", rules).instruments == ()
    (sigma,) = analyse_listing("KORG Sigma synthesizer", "", rules).instruments
    assert sigma.model == "Sigma"


def test_prices_years_and_item_numbers_are_not_serials(rules: Rules) -> None:
    title = "Korg MS-20 1978 vintage - $1,899.00 - eBay item 326160310582"
    body = "Asking 145000 yen, call 0171 234567. Year 1979."
    (ms20,) = analyse_listing(title, body, rules).instruments
    assert ms20.serial is None and ms20.flags == ()


def test_to_dict_is_the_documented_json_shape(rules: Rules) -> None:
    data = analyse_listing("Korg MS-20 SN 730144", "", rules).to_dict()
    (instrument,) = data["instruments"]
    assert set(instrument) >= {"model", "serial", "flags", "candidates"}
    assert set(instrument["flags"][0]) == {"code", "message", "suggestions", "models"}


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_never_raises_on_arbitrary_unicode(rules: Rules, title: str, body: str) -> None:
    analysis = analyse_listing(title, body, rules)
    for instrument in analysis.instruments:
        for candidate in instrument.candidates:
            text = title if candidate.field == "title" else body
            assert 0 <= candidate.start <= candidate.end <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["Korg MS-20 SN ", "KORG Polysix s/n ", "Korg Mono/Poly serial # "]), st.text())
def test_never_raises_around_a_real_title(rules: Rules, prefix: str, tail: str) -> None:
    analysis = analyse_listing(prefix + tail, tail, rules)
    # The tail may make the title an accessory's ("SN sticker") or the body a reissue's: then it says so.
    assert len(analysis.instruments) >= 1 or analysis.excluded


@pytest.mark.parametrize(
    "title",
    [
        "Flight case for Korg MS-20",
        "Korg Polysix knobs set of 10",
        "Service manual Korg Mono/Poly",
        "Korg MS-20 patch cables",
        "Power supply for KORG PolySix",
        "Korg MS-20 plugin (Korg Collection)",
    ],
)
def test_accessories_are_not_instruments(rules: Rules, title: str) -> None:
    assert analyse_listing(title, "", rules).instruments == ()


def test_an_instrument_with_its_case_is_still_an_instrument(rules: Rules) -> None:
    (ms20,) = analyse_listing("Korg MS-20 with original case SN 144571", "", rules).instruments
    assert ms20.serial == "144571"


def test_body_serial_that_fits_wins_over_a_title_serial_of_another_model(rules: Rules) -> None:
    """The seed's MS-10 135041, titled at Matrixsynth with SQ-10 152817 seen on the back plate."""
    (ms10,) = analyse_listing(
        "Korg MS-10 Synthesizer SN 152817", "Fully serviced MS-10. The s/n on the rear plate reads 135041.", rules
    ).instruments
    assert ms10.serial == "135041"
    assert codes(ms10) == [FLAG_TITLE_BODY_MISMATCH]
