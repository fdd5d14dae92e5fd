"""Serial candidates: the cue words and separators sellers use, and the numbers that are never serials."""

from __future__ import annotations

import pytest

from pipeline.serials import canonical_serial, extract_serial_candidates


def serials(text: str) -> list[str]:
    return [c.serial for c in extract_serial_candidates(text, "title")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Korg MS-20 Analog Synthesizer SN 144571", ["144571"]),
        ("KORG Polysix w/ KIWI-6 Upgrade s/n 206733", ["206733"]),
        ("S/N: 206733", ["206733"]),
        ("Serial # 145329", ["145329"]),
        ("serial number 144571", ["144571"]),
        ("Serial No. 321045", ["321045"]),
        ("Seriennummer 141567", ["141567"]),
        ("Serien-Nr. 141567", ["141567"]),
        ("numéro de série 388831", ["388831"]),
        ("N° de série : 388831", ["388831"]),
        ("numero di serie 373101", ["373101"]),
        ("matricola 373101", ["373101"]),
        ("número de serie 283648", ["283648"]),
        ("製造番号144571", ["144571"]),
        ("製造番号:144571", ["144571"]),
        ("シリアル 206733", ["206733"]),
        ("シリアルナンバー 206733", ["206733"]),
        ("Polysix 388'831", ["388831"]),
        ("s/n 373 101", ["373101"]),
        ("#144990", ["144990"]),
        ("S/N 1703C036", ["1703C036"]),
        ("serial number is ZU72723", ["ZU72723"]),
        ("Mono/Poly plate sn 53 123456", ["53123456"]),
        ("Korg Polysix 388831 for sale", ["388831"]),
    ],
)
def test_finds_serials(text: str, expected: list[str]) -> None:
    assert serials(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Price $145,000 or 145000 USD",
        "asking 145000 円",
        "¥145000",
        "made in 1978, serviced 2021",
        "call 0171 234567 after six",
        "phone: 555-123456",
        "PLZ 123456",
        "eBay item number 326160310582",
        "item 123456",
        "1,899.00",
        "144571.00",
        "SN 2 owners",
        "100% working, 123456 views",
    ],
)
def test_ignores_numbers_that_are_not_serials(text: str) -> None:
    assert serials(text) == []


def test_candidate_span_covers_the_serial() -> None:
    text = "Korg Polysix s/n 388'831 ok"
    (candidate,) = extract_serial_candidates(text, "title")
    assert text[candidate.start : candidate.end] == "388'831"
    assert candidate.cue == "s/n"


def test_canonical_serial_drops_group_separators() -> None:
    assert canonical_serial("388'831") == "388831"
    assert canonical_serial("373 101") == "373101"
    assert canonical_serial("zu72723") == "ZU72723"
