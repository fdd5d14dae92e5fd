"""Fixture folders for the page extractors, web-poet style: `<input>.expected.json` beside each input.

The expected file names the extractor (`"call"`), the page URL when the extractor needs one (`"url"`), and
the outcome: `"page"` (a PageResult), `"record"` (a ListingRecord), `"token"` (an EbayToken) or `"raises"`
(the start of a ValueError message). Error strings compare by prefix, because libxml2's wording of a syntax
error varies between versions. Kept here, not in tests/, so the fixture site's round trip and a
`python -m crawler.pages.testing <folder>` regeneration share it.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.pages.records import ListingRecord, PageResult

EXPECTED_SUFFIX = ".expected.json"


@dataclass(frozen=True, slots=True)
class FixtureCase:
    """One input file and what its extractor must return."""

    source: str
    input_path: Path
    expected_path: Path
    expected: dict[str, Any]

    @property
    def name(self) -> str:
        return self.input_path.name

    def run(self) -> Any:
        """Call the extractor named in the expected file on the input."""
        module = importlib.import_module(f"crawler.pages.{self.source}")
        func = getattr(module, self.expected["call"])
        data = self.input_path.read_bytes()
        return func(data, self.expected["url"]) if "url" in self.expected else func(data)


def page_to_dict(result: PageResult) -> dict[str, Any]:
    """A PageResult in the JSON form the expected files use."""
    return {
        "records": [record.to_dict() for record in result.records],
        "next_params": result.next_params,
        "total": result.total,
        "detail_urls": list(result.detail_urls),
        "errors": list(result.errors),
    }


def outcome_to_dict(value: Any) -> dict[str, Any]:
    """The `page` / `record` / `token` part of an expected file for an extractor's return value."""
    if isinstance(value, PageResult):
        return {"page": page_to_dict(value)}
    if isinstance(value, ListingRecord):
        return {"record": value.to_dict()}
    return {"token": {name: getattr(value, name) for name in value.__slots__}}


def load_cases(fixtures_root: Path, source: str) -> list[FixtureCase]:
    """Every input/expected pair of one source's fixture folder, sorted by name."""
    folder = fixtures_root / source
    cases = []
    for expected_path in sorted(folder.glob(f"*{EXPECTED_SUFFIX}")):
        input_path = folder / expected_path.name.removesuffix(EXPECTED_SUFFIX)
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
        cases.append(FixtureCase(source, input_path, expected_path, expected))
    return cases


def assert_case(case: FixtureCase) -> None:
    """Run one case and compare every field; a mismatch names the fixture and the field."""
    expected = case.expected
    if "raises" in expected:
        try:
            case.run()
        except ValueError as exc:
            assert str(exc).startswith(expected["raises"]), f"{case.name}: raised {exc!r}"
            return
        raise AssertionError(f"{case.name}: expected ValueError({expected['raises']!r})")
    actual = outcome_to_dict(case.run())
    if "page" in expected:
        got, want = actual["page"], expected["page"]
        for key in ("next_params", "total", "detail_urls"):
            assert got[key] == want[key], f"{case.name}: {key} {got[key]!r} != {want[key]!r}"
        assert len(got["errors"]) == len(want["errors"]), f"{case.name}: errors {got['errors']!r}"
        for got_error, want_error in zip(got["errors"], want["errors"], strict=True):
            assert got_error.startswith(want_error), f"{case.name}: error {got_error!r} !~ {want_error!r}"
        assert len(got["records"]) == len(want["records"]), f"{case.name}: record count"
        for index, (got_record, want_record) in enumerate(zip(got["records"], want["records"], strict=True)):
            for field in sorted(set(got_record) | set(want_record)):
                assert got_record.get(field) == want_record.get(field), (
                    f"{case.name} record {index + 1} field {field}: "
                    f"{got_record.get(field)!r} != {want_record.get(field)!r}"
                )
    else:
        assert actual == {k: v for k, v in expected.items() if k in actual}, f"{case.name}: {actual!r}"


def regenerate(folder: Path) -> list[str]:
    """Rewrite every expected outcome in `folder` from the current extractor (review the diff!)."""
    written = []
    for case in load_cases(folder.parent, folder.name):
        head = {key: case.expected[key] for key in ("call", "url") if key in case.expected}
        try:
            outcome = outcome_to_dict(case.run())
        except ValueError as exc:
            outcome = {"raises": str(exc)}
        if "page" in outcome:  # keep only the stable prefix of libxml2 syntax errors
            outcome["page"]["errors"] = [
                error.split(" at line")[0] if error.startswith("feed: XML syntax") else error
                for error in outcome["page"]["errors"]
            ]
        text = json.dumps({**head, **outcome}, indent=2, ensure_ascii=False) + "\n"
        case.expected_path.write_text(text, encoding="utf-8")
        written.append(case.expected_path.name)
    return written


if __name__ == "__main__":  # pragma: no cover - maintenance helper
    for argument in sys.argv[1:]:
        for name in regenerate(Path(argument)):
            print("wrote", name)
