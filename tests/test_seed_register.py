"""Every serial of config/register/seed.csv (the seed register's sightings) fits a block of its model."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.rules import Rules

SEED_CSV = Path(__file__).resolve().parent.parent / "config" / "register" / "seed.csv"
COLUMNS = ["model", "serial", "date", "note", "url"]

# What the seed shows but the register leaves out, and why (kept here so nobody adds them by accident):
LEFT_OUT = {
    "20?384": "SE-300 list: third digit unreadable",
    "43627": "Micro-Six list, written 43627(?): last digit invisible (footnote i)",
    "0891": "MS-50 footnote 5, written --0891: only the last four digits",
    "32405": "GT-6: handwritten, probably an inventory number, not the original serial",
    "496090": "KPR-77 footnote 1: 'Might be 496090?', a guess at an unlisted serial",
    "811016": "PS-3010 (year-based era), not a model of this register",
    "132828": "MS-10 service manual: where the noise circuit changed, not a sighting",
    "130000": "MS-10 service manual: the first serial, not a sighting",
}
# Serials the seed calls wrong (they are for tests/test_seed_notes.py, never the register).
WRONG = {
    "730144",
    "134937",
    "152817:MS-10",
    "1703C036",
    "152097",
    "162214",
    "90339",
    "23120",
    "231497",
    "23887",
    "25270",
    "366784",
    "260268",
    "888825",
    "272672",
    "045692",
    "371557",
    "072618",
    "373456",
    "873463",
    "237991",
    "275545",
    "075738",
    "371565",
    "3809004",
    "186971",
    "ZU72723",
    "456042",
}


def _rows() -> list[tuple[int, dict[str, str]]]:
    with SEED_CSV.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return [(reader.line_num, row) for row in reader]


ROWS = _rows()


def test_columns_exactly() -> None:
    with SEED_CSV.open(newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == COLUMNS


@pytest.mark.parametrize(
    "row", [r for _, r in ROWS], ids=[f"line{n}-{r['model']}-{r['serial']}" for n, r in ROWS]
)
def test_row_fits_a_block_of_its_model(rules: Rules, row: dict[str, str]) -> None:
    assert row["model"] in rules.models, f"unknown model {row['model']!r}"
    assert row["serial"].isdigit(), f"serial {row['serial']!r} is not digits only"
    assert rules.fits(row["model"], row["serial"]), (
        f"{row['model']} {row['serial']} fits none of {[b.pattern for b in rules.model(row['model']).blocks]}"
    )
    assert row["note"].startswith("seed:"), "the note says where in the seed the row comes from"


def test_no_serial_twice() -> None:
    seen: dict[str, str] = {}
    for line, row in ROWS:
        assert row["serial"] not in seen, f"line {line}: {row['serial']} is also on {seen[row['serial']]}"
        seen[row["serial"]] = f"line {line}"


def test_left_out_and_wrong_serials_are_not_in_the_register() -> None:
    serials = {row["serial"] for _, row in ROWS}
    pairs = {f"{row['serial']}:{row['model']}" for _, row in ROWS}
    for serial in LEFT_OUT:
        assert serial not in serials, f"{serial}: {LEFT_OUT[serial]}"
    for wrong in WRONG:
        assert wrong not in (pairs if ":" in wrong else serials), f"{wrong} is a wrong serial in the seed"


@pytest.mark.parametrize(
    ("model", "serial"),
    [
        ("MS-20", "439057"),
        ("MS-10", "134458"),
        ("MS-10", "135041"),
        ("SQ-10", "151215"),
        ("SQ-10", "151238"),
        ("SQ-10", "152730"),
        ("SQ-10", "151949"),
        ("SQ-10", "152817"),
        ("MS-20", "144571"),
        ("VC-10", "160449"),
        ("VC-10", "160469"),
        ("VC-10", "160518"),
        ("VC-10", "160581"),
        ("VC-10", "160177"),
        ("X-911", "271228"),
        ("Delta", "283648"),
        ("Delta", "283837"),
        ("PolySix", "385072"),
        ("PolySix", "385106"),
        ("PolySix", "390218"),
        ("PolySix", "388831"),
        ("KR-55B", "398738"),
        ("Mono/Poly", "370245"),
        ("Mono/Poly", "374771"),
        ("Mono/Poly", "372618"),
        ("Mono/Poly", "377565"),
        ("SAS-20", "802087"),
        ("Trident", "331792"),
        ("Poly-61", "702650"),
        ("CX-3", "328327"),
        ("WT-12", "232122"),
    ],
)
def test_named_units_are_registered(model: str, serial: str) -> None:
    assert any(row["model"] == model and row["serial"] == serial for _, row in ROWS)


def test_list_counts() -> None:
    """The seed's example lists, one row per unit (CX-3 328327 a1/a2 is one unit)."""
    counts: dict[str, int] = {}
    for _, row in ROWS:
        counts[row["model"]] = counts.get(row["model"], 0) + 1
    assert {
        m: counts.get(m, 0)
        for m in (
            "GT-6",
            "SE-300",
            "WT-12",
            "PK-13",
            "SD-400",
            "SD-200",
            "WT-3",
            "CX-3",
            "BX-3",
            "LP-10",
            "Micro-Six",
            "SDD-3000",
            "SP-80",
        )
    } == {
        "GT-6": 17,
        "SE-300": 9,
        "WT-12": 20,
        "PK-13": 5,
        "SD-400": 5,
        "SD-200": 6,
        "WT-3": 1,
        "CX-3": 20,
        "BX-3": 4,
        "LP-10": 14,
        "Micro-Six": 10,
        "SDD-3000": 1,
        "SP-80": 1,
    }
