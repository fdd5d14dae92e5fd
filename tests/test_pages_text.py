"""The shared text helpers: HTML to text keeps line breaks and never raises; times and prices normalise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.pages._text import (
    html_to_text,
    normalise_price,
    parse_iso_time,
    parse_jst_time,
    parse_rfc822_time,
    query_params,
    unix_to_iso,
)

TAGS = st.sampled_from(["p", "br", "div", "b", "script", "li", "img", "a", "iframe", "!--", "?xml", "![CDATA["])


@st.composite
def html_soup(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.text(), TAGS.map(lambda t: f"<{t}>"), TAGS.map(lambda t: f"</{t}>"))))
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), html_soup(), st.binary()))
def test_html_to_text_never_raises(markup: str | bytes) -> None:
    text = html_to_text(markup)
    assert isinstance(text, str)
    assert "\n\n" not in text and text == text.strip()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1), min_size=1))
def test_paragraphs_stay_on_their_own_lines(paragraphs: list[str]) -> None:
    from html import escape

    text = html_to_text("".join(f"<p>{escape(p)}</p>" for p in paragraphs))
    expected = [" ".join(p.split()) for p in paragraphs]
    assert (text.split("\n") if text else []) == [p for p in expected if p]


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Serial No. 321045</p><p>2 owners</p>", "Serial No. 321045\n2 owners"),
        ("a<br>b<br/><br />c", "a\nb\nc"),
        ("<div>x&amp;y&nbsp;z</div><script>var s = 1;</script>", "x&y z"),
        ("製造番号：１４４５７１<br>動作品", "製造番号：１４４５７１\n動作品"),
        ("", ""),
        (None, ""),
        ("\x00<p>nul\x0b</p>", "nul"),
        ("<p>a<!-- c -->b<?pi x?>c</p>", "abc"),
        ("<script>alert(1)</script><!-- hidden -->", ""),
        ("<div>" * 5000 + "deep &amp; nested" + "</div>" * 5000, "deep & nested"),
    ],
)
def test_html_to_text_examples(markup: str | None, text: str) -> None:
    assert html_to_text(markup) == text


def test_times() -> None:
    assert parse_iso_time("2024-03-14T23:38:11.000Z") == "2024-03-14T23:38:11+00:00"
    assert parse_iso_time("2018-03-06T21:46:00.000-05:00") == "2018-03-06T21:46:00-05:00"
    assert parse_iso_time("yesterday") is None and parse_iso_time(None) is None
    assert parse_jst_time("2024-03-15 21:00:00") == "2024-03-15T21:00:00+09:00"
    assert parse_rfc822_time("Fri, 15 Mar 2024 03:41:00 +0000") == "2024-03-15T03:41:00+00:00"
    assert unix_to_iso("1710766800") == "2024-03-18T13:00:00+00:00"
    assert unix_to_iso("soon") is None


@pytest.mark.parametrize(
    ("value", "currency", "price"),
    [
        ("2450.00", "USD", "2450.00"),
        (2450, "USD", "2450.00"),
        (529.41, "USD", "529.41"),
        ("98,000円", "JPY", "98000"),
        ("$1,899.00", None, "1899.00"),
        ("free", "USD", None),
        (None, "USD", None),
        (True, "USD", None),
        ("NaN", "USD", None),
    ],
)
def test_prices(value: object, currency: str | None, price: str | None) -> None:
    assert normalise_price(value, currency) == price


def test_query_params() -> None:
    url = "https://www.blogger.com/feeds/1/posts/default?start-index=4&max-results=3"
    assert query_params(url) == {"start-index": "4", "max-results": "3"}
    assert query_params(None) is None
