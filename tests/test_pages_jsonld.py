"""schema.org Product extractor on the project's fixtures: JSON-LD (@graph, lists), microdata, ItemList."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.pages import jsonld

FIXTURES = Path(__file__).parent / "fixtures"
DIR = FIXTURES / "jsonld"


def test_graph_and_type_lists() -> None:
    result = jsonld.parse_product_page(
        (DIR / "product_jsonld_graph.html").read_bytes(), "https://shop.example-vintage-synths.test/p/1"
    )
    titles = [r.title for r in result.records]
    assert titles == [
        "Korg MS-20 Monophonic Synthesizer (1979) SN 144571",
        "Korg Polysix w/ KIWI-6 (s/n 206733)",
    ]
    polysix = result.records[1]
    assert polysix.price == "2450.00" and polysix.seller == "Jamie R."
    assert "Serial Number: 206733" in polysix.body, "serialNumber on the Offer reaches the body"


def test_microdata() -> None:
    result = jsonld.parse_product_page(
        (DIR / "product_microdata.html").read_bytes(), "https://synthladen.example.test/p/x"
    )
    (record,) = result.records
    assert record.images == ("https://synthladen.example.test/media/monopoly-145329.jpg",)
    assert record.extra["syntax"] == "microdata" and record.external_id == "SLB-2291"


@pytest.mark.parametrize(
    "html", ["", "<html><body>nothing</body></html>", "<script type='application/ld+json'>{</script>"]
)
def test_pages_without_products_report_it(html: str) -> None:
    result = jsonld.parse_product_page(html, "https://example.test/x")
    assert result.records == () and result.errors
