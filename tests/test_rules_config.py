"""The shipped rules in config/ load and say what the seed register says; broken rules are refused with the
file and line of every problem, by the loader and by `korgwatch rules check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from korgwatch.cli import app
from pipeline.rules import EXCLUSION_REASONS, Rules, RulesError, check_rules, load_rules

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG = REPO_ROOT / "config"

# Every model of the seed's table and Appendix, with its number types as the Appendix gives them
# (plus 53 nnnnnn, the Mono/Poly's Hagström plates, and the Sigma's 0nnn from the table).
SEED_BLOCKS: dict[str, tuple[str, ...]] = {
    "EM-570": ("11nnnn",),
    "SE-500": ("12nnnn",),
    "MS-10": ("13nnnn",),
    "MS-20": ("14nnnn", "439nnn"),
    "GT-6": ("12nnnn", "14nnnn", "15nnnn", "16nnnn"),
    "SQ-10": ("15nnnn",),
    "VC-10": ("16nnnn",),
    "MS-02": ("17nnnn",),
    "MS-03": ("18nnnn",),
    "MS-50": ("19nnnn",),
    "SE-300": ("20nnnn",),
    "PS-3200": ("21nnnn",),
    "WT-12": ("20nnnn", "21nnnn", "22nnnn", "23nnnn", "26nnnn"),
    "Lambda": ("23nnnn",),
    "Sigma": ("24nnnn", "0nnn"),
    "KR-55": ("25nnnn", "36nnnn"),
    "KR-33": ("26nnnn",),
    "X-911": ("27nnnn",),
    "Delta": ("28nnnn",),
    "PK-13": ("28nnnn", "42nnnn"),
    "SD-400": ("29nnnn",),
    "SD-200": ("30nnnn",),
    "WT-3": ("31nnnn",),
    "CX-3": ("32nnnn",),
    "Trident": ("33nnnn",),
    "BX-3": ("34nnnn",),
    "LP-10": ("35nnnn",),
    "Mono/Poly": ("37nnnn", "47nnnn", "53 nnnnnn"),
    "PolySix": ("38nnnn", "39nnnn", "46nnnn"),
    "KR-55B": ("39nnnn",),
    "BPX-3": ("40nnnn",),
    "Trident II": ("41nnnn",),
    "EPS-1": ("43nnnn",),
    "Micro-Six": ("13nnnn", "14nnnn", "42nnnn", "43nnnn", "46nnnn", "49nnnn"),
    "SDD-3000": ("44nnnn",),
    "KPR-77": ("45nnnn", "49nnnn"),
    "SP-80": ("5nnnnn",),
    "SP-80S": ("6nnnnn",),
    "Poly-61": ("7nnnnn",),
    "SAS-20": ("8nnnnn",),
}

# The seed's question-marked number types and years.
UNCERTAIN_BLOCKS = {("GT-6", p) for p in ("12nnnn", "14nnnn", "15nnnn", "16nnnn")} | {("WT-3", "31nnnn")}
UNCERTAIN_YEARS = {
    "GT-6",
    "WT-12",
    "Lambda",
    "Sigma",
    "PK-13",
    "SD-400",
    "SD-200",
    "WT-3",
    "BX-3",
    "BPX-3",
    "EPS-1",
    "Micro-Six",
    "SDD-3000",
    "KPR-77",
    "SP-80",
}
YEARS = {
    "EM-570": 1977,
    "SE-500": 1977,
    "MS-10": 1978,
    "MS-20": 1978,
    "SQ-10": 1978,
    "VC-10": 1978,
    "MS-50": 1978,
    "Sigma": 1978,
    "Lambda": 1979,
    "KR-55": 1979,
    "X-911": 1979,
    "Delta": 1979,
    "CX-3": 1979,
    "Trident": 1980,
    "LP-10": 1980,
    "Mono/Poly": 1981,
    "PolySix": 1981,
    "KR-55B": 1982,
    "Trident II": 1982,
    "SP-80S": 1982,
    "Poly-61": 1982,
    "SAS-20": 1983,
}


def _all_names(rules: Rules, model: str) -> set[str]:
    m = rules.model(model)
    return {n.casefold() for n in (m.name, *m.aliases, *m.korg_only_aliases)}


# --- the shipped files --------------------------------------------------------------------------------


def test_shipped_config_loads(rules: Rules) -> None:
    assert rules.files, "no rules file was read"
    for file in rules.files:
        assert Path(file).is_file()
    problems = check_rules(CONFIG)[1]
    assert problems == []


def test_every_seed_model_is_in_the_rules(rules: Rules) -> None:
    assert set(rules.models) == set(SEED_BLOCKS)


@pytest.mark.parametrize("model", sorted(SEED_BLOCKS))
def test_model_has_the_seeds_number_types(rules: Rules, model: str) -> None:
    patterns = {b.pattern for b in rules.model(model).blocks}
    missing = set(SEED_BLOCKS[model]) - patterns
    assert not missing, f"{model} lacks {sorted(missing)}"
    for block in rules.model(model).blocks:
        if (model, block.pattern) in UNCERTAIN_BLOCKS:
            assert not block.certain, f"{model} {block.pattern} is question-marked in the seed"
        if block.pattern not in SEED_BLOCKS[model]:
            # Extra blocks exist only where the seed's own example list needs them, and say so.
            assert not block.certain and block.note, f"{model} {block.pattern} is not in the seed"


@pytest.mark.parametrize("model", sorted(SEED_BLOCKS))
def test_model_year_and_kind(rules: Rules, model: str) -> None:
    rule = rules.model(model)
    assert 1977 <= rule.year <= 1983
    assert rule.kind
    assert rule.year_certain is (model not in UNCERTAIN_YEARS)
    if model in YEARS:
        assert rule.year == YEARS[model]


def test_first_ms10_is_130000(rules: Rules) -> None:
    assert rules.fits("MS-10", "130000") == ["13nnnn"]
    assert rules.fits("MS-10", "129999") == []


def test_hagstrom_plates_are_eight_digits(rules: Rules) -> None:
    assert rules.fits("Mono/Poly", "53012345") == ["53 nnnnnn"]
    assert rules.fits("Sigma", "0736") == ["0nnn"]


@pytest.mark.parametrize(
    ("model", "names"),
    [
        ("Lambda", {"Λ", "ES-50", "Lambda"}),
        ("Sigma", {"Σ", "KP-30"}),
        ("Delta", {"Δ", "DL-50"}),
        ("Mono/Poly", {"MP-4", "Monopoly"}),
        ("PolySix", {"PS-6", "Poly 6"}),
        ("Trident", {"TRD", "Trident I", "Trident Mk1"}),
        ("Trident II", {"TRD-2", "Trident MkII", "Trident Mk2", "Trident 2"}),
        ("Micro-Six", {"GT-6J", "Micro-6"}),
        ("KR-55", {"Rhythm 55"}),
        ("VC-10", {"Vocoder VC-10"}),
    ],
)
def test_aliases(rules: Rules, model: str, names: set[str]) -> None:
    assert {n.casefold() for n in names} <= _all_names(rules, model)


@pytest.mark.parametrize(
    "word",
    [
        "Lambda",
        "Λ",
        "Sigma",
        "Σ",
        "Delta",
        "Δ",
        "Trident",
        "TRD",
        "Trident II",
        "Monopoly",
        "GT-6",
        "PS-6",
        "CX-3",
    ],
)
def test_ordinary_words_count_only_with_korg(rules: Rules, word: str) -> None:
    korg_only = {a.casefold() for m in rules.models.values() for a in m.korg_only_aliases}
    plain = {a.casefold() for m in rules.models.values() for a in m.aliases}
    assert word.casefold() in korg_only
    assert word.casefold() not in plain, "listed in both aliases and korg_only_aliases"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("MS-20 mini", "reissue"),
        ("MS-20 FS", "reissue"),
        ("MS-20M", "reissue"),
        ("MS-20 Kit", "reissue"),
        ("MS-20 iC", "later product"),
        ("MS-20 Legacy", "later product"),
        ("Legacy Collection", "later product"),
        ("MS2000", "later product"),
        ("MS2000R", "later product"),
        ("MS2000B", "later product"),
        ("microKORG", "later product"),
        ("Poly-800", "later product"),
        ("Poly-61M", "later product"),
        ("iPolysix", "later product"),
        ("KR-55 Pro", "reissue"),
        ("CX-3 V2", "later product"),
        ("digital CX-3", "later product"),
        ("new CX-3", "later product"),
        ("digital BX-3", "later product"),
        ("SDD-3000 PDL", "later product"),
        ("SDD-3000 pedal", "later product"),
        ("volca", "later product"),
        ("minilogue", "later product"),
        ("monologue", "later product"),
        ("ARP Odyssey FS", "reissue"),
        ("Korg Collection", "later product"),
        ("PS-3100", "earlier Korg"),
        ("PS-3300", "earlier Korg"),
        ("PS-3010", "earlier Korg"),
        ("800DV", "earlier Korg"),
        ("miniKORG 700S", "earlier Korg"),
        ("Mini Pops", "earlier Korg"),
        ("Polyphonic Ensemble", "earlier Korg"),
        ("Behringer K-2", "other make"),
        ("Behringer MS-1", "other make"),
        ("Boss GT-6", "other make"),
        ("Zoom MS-50G", "other make"),
    ],
)
def test_exclusion(rules: Rules, name: str, reason: str) -> None:
    found = [e for e in rules.exclusions if name.casefold() in {a.casefold() for a in (e.name, *e.aliases)}]
    assert found, f"no exclusion answers to {name!r}"
    assert found[0].reason == reason


def test_exclusion_reasons_and_other_makes(rules: Rules) -> None:
    assert all(e.reason in EXCLUSION_REASONS for e in rules.exclusions)
    makes = {m.casefold() for m in rules.other_makes}
    for make in (
        "Roland",
        "Yamaha",
        "Moog",
        "Sequential",
        "Oberheim",
        "ARP",
        "Behringer",
        "Arturia",
        "Elka",
        "Crumar",
        "Casio",
        "Hammond",
        "Hohner",
        "Ensoniq",
        "Kawai",
        "Akai",
        "Novation",
        "Waldorf",
        "Boss",
        "Electro-Harmonix",
        "Teenage Engineering",
        "Trident Audio",
        "M-Audio",
    ):
        assert make.casefold() in makes
    assert "korg" not in makes


# --- broken copies ------------------------------------------------------------------------------------

GOOD = """\
models:
  - name: MS-10
    aliases: [MS10]
    year: 1978
    kind: unitary/semimodular keyboard synthesiser
    blocks:
      - pattern: 13nnnn
        min: 130000
  - name: MS-20
    aliases: []
    year: 1978
    kind: unitary/semimodular keyboard synthesiser
    blocks:
      - pattern: 14nnnn
exclusions:
  - name: MS-20 mini
    reason: reissue
other_makes: [Roland]
"""


def _write(tmp_path: Path, text: str, name: str = "models.yaml") -> Path:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / name).write_text(text, encoding="utf-8")
    return config


def _line_of(text: str, needle: str | int) -> int:
    """The 1-based number of the only line that reads `needle` (an int is already a line number)."""
    if isinstance(needle, int):
        return needle
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == needle]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


# (case id, text, the line the problem is on (its text, or its number), a word the message must contain)
BROKEN = [
    # an unclosed list: the parser notices on the next line, 4
    ("bad-yaml", GOOD.replace("    aliases: [MS10]\n", "    aliases: [MS10\n"), 4, "YAML"),
    (
        "unknown-key",
        GOOD.replace("  - name: MS-20\n", "  - name: MS-20\n    colour: red\n"),
        "- name: MS-20",
        "colour",
    ),
    ("bad-pattern", GOOD.replace("pattern: 14nnnn", "pattern: 14nXnn"), "- pattern: 14nXnn", "14nXnn"),
    (
        "missing-year",
        GOOD.replace(
            "    year: 1978\n    kind: unitary/semimodular keyboard synthesiser\n"
            "    blocks:\n      - pattern: 14nnnn",
            "    kind: unitary/semimodular keyboard synthesiser\n    blocks:\n      - pattern: 14nnnn",
        ),
        "- name: MS-20",
        "year",
    ),
    (
        "alias-two-models",
        GOOD.replace("  - name: MS-20\n    aliases: []", "  - name: MS-20\n    aliases: [MS 10]"),
        "- name: MS-20",
        "MS 10",
    ),
    ("bad-reason", GOOD.replace("reason: reissue", "reason: remake"), "- name: MS-20 mini", "remake"),
    (
        "min-above-max",
        GOOD.replace("        min: 130000\n", "        min: 139000\n        max: 131000\n"),
        "- pattern: 13nnnn",
        "min above max",
    ),
    (
        "no-blocks",
        GOOD.replace("    blocks:\n      - pattern: 14nnnn\n", "    blocks: []\n"),
        "- name: MS-20",
        "blocks",
    ),
]


def test_good_copy_loads(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, GOOD))
    assert set(rules.models) == {"MS-10", "MS-20"}


@pytest.mark.parametrize(("text", "needle", "word"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_copy_names_file_and_line(tmp_path: Path, text: str, needle: str, word: str) -> None:
    assert text != GOOD, "the test's replacement did not apply"
    config = _write(tmp_path, text)
    rules, problems = check_rules(config)
    assert rules is None
    expected_line = _line_of(text, needle)
    located = [p for p in problems if p.file == str(config / "models.yaml") and p.line == expected_line]
    assert located, f"no problem at models.yaml:{expected_line}; got {[str(p) for p in problems]}"
    assert any(word.casefold() in p.message.casefold() for p in located), [str(p) for p in located]
    with pytest.raises(RulesError) as info:
        load_rules(config)
    assert f"models.yaml:{expected_line}:" in str(info.value)


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = GOOD.replace("pattern: 14nnnn", "pattern: 14nXnn").replace("reason: reissue", "reason: remake")
    _, problems = check_rules(_write(tmp_path, text))
    expected = {_line_of(text, "- pattern: 14nXnn"), _line_of(text, "- name: MS-20 mini")}
    assert {p.line for p in problems} >= expected


def test_alias_clash_across_files_names_the_second_file(tmp_path: Path) -> None:
    config = _write(tmp_path, GOOD)
    (config / "models.d").mkdir()
    extra = "models:\n  - name: MS-30\n    aliases: [ms-20]\n    year: 1979\n    kind: x\n"
    extra += "    blocks: [15nnnn]\n"
    (config / "models.d" / "local.yaml").write_text(extra, encoding="utf-8")
    _, problems = check_rules(config)
    assert [(Path(p.file).name, p.line) for p in problems] == [("local.yaml", 2)]


@pytest.mark.parametrize(
    "mutation",
    [
        ("year: 1978\n    kind: modular synthesiser", "year: nineteen\n    kind: modular synthesiser"),
        ("pattern: 19nnnn", "pattern: 19-nnnn"),
    ],
    ids=["shipped-ms50-year", "shipped-ms50-pattern"],
)
def test_broken_copy_of_the_shipped_file(tmp_path: Path, mutation: tuple[str, str]) -> None:
    shipped = (CONFIG / "models.yaml").read_text(encoding="utf-8")
    old, new = mutation
    assert shipped.count(old) == 1
    text = shipped.replace(old, new)
    config = _write(tmp_path, text)
    _, problems = check_rules(config)
    line = _line_of(text, "- name: MS-50") if "year" in old else _line_of(text, f"- {new}")
    assert [(p.file, p.line) for p in problems] == [(str(config / "models.yaml"), line)]


# --- the command line ---------------------------------------------------------------------------------

runner = CliRunner()


def _flat(text: str) -> str:
    """Undo the console's line wrapping."""
    return " ".join(text.split())


def test_cli_rules_check_passes_on_shipped_config() -> None:
    result = runner.invoke(app, ["rules", "check", "--config", str(CONFIG)])
    assert result.exit_code == 0, result.output
    assert f"ok: {len(SEED_BLOCKS)} models" in result.output


def test_cli_rules_check_default_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KORGWATCH_CONFIG", raising=False)
    result = runner.invoke(app, ["rules", "check"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("text", "needle", "word"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_cli_rules_check_fails_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, needle: str, word: str
) -> None:
    _write(tmp_path, text)
    monkeypatch.chdir(tmp_path)  # a short relative path, so the console does not wrap it
    result = runner.invoke(app, ["rules", "check", "--config", "config"])
    assert result.exit_code == 1
    output = _flat(result.output)
    assert f"config/models.yaml:{_line_of(text, needle)}:" in output
    assert "problem(s) found" in output


def test_cli_rules_check_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(tmp_path, BROKEN[0][1])
    monkeypatch.setenv("KORGWATCH_CONFIG", str(config))
    assert runner.invoke(app, ["rules", "check"]).exit_code == 1
    monkeypatch.setenv("KORGWATCH_CONFIG", str(CONFIG))
    assert runner.invoke(app, ["rules", "check"]).exit_code == 0


def test_cli_rules_check_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rules", "check", "--config", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
