"""Presentation helpers: text cut into highlighted segments and a model's serials laid out as a chart.

Pure functions over plain values; the templates escape everything these return, so a hostile title stays text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pipeline.rules import ModelRule


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of a field to highlight: `kind` picks the style ("recorded", "candidate"), `label` names it."""

    start: int
    end: int
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    span: Span | None = None


def segments(text: str, spans: list[Span]) -> list[Segment]:
    """Cut `text` at the spans; a span overlapping an earlier one (or out of range) is left unmarked.

    Spans come from the database and may be stale after an edit: they are clamped, never trusted.
    """
    out: list[Segment] = []
    pos = 0
    for span in sorted(spans, key=lambda s: (s.start, 0 if s.kind == "recorded" else 1, -s.end)):
        if span.start < pos or span.start >= span.end or span.end > len(text):
            continue
        if span.start > pos:
            out.append(Segment(text[pos : span.start]))
        out.append(Segment(text[span.start : span.end], span))
        pos = span.end
    if pos < len(text):
        out.append(Segment(text[pos:]))
    return out


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: a scraped `javascript:` link must never become a live link."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


# --- the model chart ----------------------------------------------------------------------------------

CHART_WIDTH = 760
PANEL_HEIGHT = 150
LEFT = 70
RIGHT = 40
TOP = 22
BOTTOM = 26


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    serial: str
    date: str
    flagged: bool
    href: str


@dataclass(frozen=True, slots=True)
class Panel:
    """One number block (or "outside every block") as a band with the serials seen in it."""

    title: str
    top: float
    height: float
    low: int
    high: int
    shaded: bool
    dots: tuple[Dot, ...]
    y_ticks: tuple[tuple[float, str], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    panels: tuple[Panel, ...]
    x_ticks: tuple[tuple[float, str], ...]
    count: int
    flagged: int


def _block_range(prefix: str, length: int, low: int | None, high: int | None) -> tuple[int, int]:
    base_low = int(prefix.ljust(length, "0")) if length else 0
    base_high = int(prefix.ljust(length, "9")) if length else 0
    return (
        max(base_low, low) if low is not None else base_low,
        min(base_high, high) if high is not None else base_high,
    )


def model_chart(rule: ModelRule, points: list[tuple[str, datetime, bool, str]]) -> Chart:
    """Lay out (serial, first seen, flagged, link) points: one shaded band per block, x = first-seen date.

    Blocks such as 14nnnn and 439nnn are far apart, so each gets its own band rather than one squashed axis.
    """
    groups: list[tuple[str, int, int, bool, list[tuple[str, datetime, bool, str]]]] = []
    placed: set[int] = set()
    for block in rule.blocks:
        low, high = _block_range(block.prefix, block.length, block.min, block.max)
        inside = [p for i, p in enumerate(points) if block.fits(p[0]) and i not in placed]
        placed |= {i for i, p in enumerate(points) if block.fits(p[0])}
        title = f"{block.describe()}: {len(inside)} seen"
        groups.append((title, low, high, True, inside))
    outside = [p for i, p in enumerate(points) if i not in placed]
    if outside:
        numeric = [int(p[0]) for p in outside if p[0].isdigit()]
        low, high = (min(numeric), max(numeric)) if numeric else (0, 1)
        groups.append((f"outside every block: {len(outside)} seen", low, max(high, low + 1), False, outside))

    dates = [p[1] for p in points]
    start = min(dates) if dates else datetime(1977, 1, 1, tzinfo=UTC)
    end = max(dates) if dates else start + timedelta(days=365)
    if end - start < timedelta(days=30):
        start, end = start - timedelta(days=15), end + timedelta(days=15)
    pad = (end - start) * 0.04  # keep the marks off the band's edges
    start, end = start - pad, end + pad
    plot_w = CHART_WIDTH - LEFT - RIGHT

    def x_of(when: datetime) -> float:
        return round(LEFT + plot_w * (when - start) / (end - start), 1)

    panels: list[Panel] = []
    top = float(TOP)
    inner = PANEL_HEIGHT - 20
    for title, low, high, shaded, members in groups:
        span = max(high - low, 1)

        def y_of(serial: str, low: int = low, span: int = span, top: float = top) -> float:
            value = int(serial) if serial.isdigit() else low
            frac = min(max((value - low) / span, 0.0), 1.0)
            return round(top + 20 + (inner - 12) * (1 - frac), 1)

        dots = tuple(
            Dot(x_of(when), y_of(serial), serial, when.date().isoformat(), flagged, href)
            for serial, when, flagged, href in members
        )
        ticks = tuple(
            (round(top + 20 + (inner - 12) * (1 - f), 1), str(round(low + span * f))) for f in (0.0, 0.5, 1.0)
        )
        panels.append(Panel(title, top, PANEL_HEIGHT, low, high, shaded, dots, ticks))
        top += PANEL_HEIGHT + 8
    x_ticks = tuple(
        (x_of(start + (end - start) * f), (start + (end - start) * f).strftime("%Y-%m"))
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    return Chart(
        CHART_WIDTH,
        int(top + BOTTOM),
        LEFT,
        RIGHT,
        tuple(panels),
        x_ticks,
        len(points),
        sum(1 for p in points if p[2]),
    )


# --- the model chart beyond a few thousand points: counts per block and month --------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """The instruments of one block first seen in one month: a bar whose height is their number."""

    x: float
    width: float
    y: float
    height: float
    flagged_y: float
    flagged_height: float
    month: str
    count: int
    flagged: int
    href: str


@dataclass(frozen=True, slots=True)
class DensityPanel:
    title: str
    top: float
    height: float
    shaded: bool
    bars: tuple[Bar, ...]
    y_ticks: tuple[tuple[float, str], ...]


@dataclass(frozen=True, slots=True)
class DensityChart:
    width: int
    height: int
    left: int
    right: int
    panels: tuple[DensityPanel, ...]
    x_ticks: tuple[tuple[float, str], ...]
    count: int
    flagged: int


def _month_number(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def _month_name(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


MAX_BARS = 120  # bars per band: beyond this many months, each bar covers several


def density_chart(
    rule: ModelRule, cells: list[tuple[int, str, int, int]], href: Callable[[int, str, str], str]
) -> DensityChart:
    """Lay out (block index, 'YYYY-MM', instruments, awaiting review) cells: one band per block as in
    `model_chart`, one bar per month (per run of months when there are more than MAX_BARS);
    `href(block, first month, last month)` links a bar to its serials."""
    groups = [(f"{b.describe()}", True) for b in rule.blocks]
    outside = len(rule.blocks)
    if any(c[0] == outside for c in cells):
        groups.append(("outside every block", False))
    months = [_month_number(c[1]) for c in cells]
    first = min(months) if months else _month_number("1977-01")
    last = max(months) if months else first
    per_bar = -(-(last - first + 1) // MAX_BARS)  # months per bar, rounded up
    bins = -(-(last - first + 1) // per_bar)
    plot_w = CHART_WIDTH - LEFT - RIGHT
    step = plot_w / bins
    full = PANEL_HEIGHT - 32  # the band's drawable height, as in model_chart
    panels: list[DensityPanel] = []
    top = float(TOP)
    for index, (name, shaded) in enumerate(groups):
        binned: dict[int, list[int]] = {}
        for block, month, count, flagged in cells:
            if block == index:
                totals = binned.setdefault((_month_number(month) - first) // per_bar, [0, 0])
                totals[0] += count
                totals[1] += flagged
        peak = max((n for n, _ in binned.values()), default=1)
        bottom = top + PANEL_HEIGHT - 12
        bars = []
        for slot, (count, flagged) in sorted(binned.items()):
            height = max(full * count / peak, 1.0)
            flagged_height = full * flagged / peak if flagged else 0.0
            start, end = _month_name(first + slot * per_bar), _month_name(min(first + (slot + 1) * per_bar - 1, last))
            label = start if start == end else f"{start} to {end}"
            bars.append(
                Bar(
                    round(LEFT + step * slot, 1), round(max(step * 0.85, 0.6), 2), round(bottom - height, 1),
                    round(height, 1), round(bottom - flagged_height, 1), round(flagged_height, 1), label, count,
                    flagged, href(index, start, end),
                )
            )  # fmt: skip
        seen = sum(n for n, _ in binned.values())
        ticks = ((round(bottom, 1), "0"), (round(bottom - full, 1), str(peak)))
        panels.append(DensityPanel(f"{name}: {seen} seen", top, PANEL_HEIGHT, shaded, tuple(bars), ticks))
        top += PANEL_HEIGHT + 8
    x_ticks = tuple(
        (round(LEFT + step * round((bins - 1) * f) + step / 2, 1), _month_name(first + per_bar * round((bins - 1) * f)))
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    return DensityChart(
        CHART_WIDTH,
        int(top + BOTTOM),
        LEFT,
        RIGHT,
        tuple(panels),
        x_ticks,
        sum(c[2] for c in cells),
        sum(c[3] for c in cells),
    )


@dataclass(frozen=True, slots=True)
class BlockEstimate:
    """One line of the model page's production estimate, worded as `korgwatch stats` words it."""

    block: str
    units: int
    text: str


def model_estimates(session: Any, rule: ModelRule) -> list[BlockEstimate]:
    """Per number block of the model: units seen and the estimate (or "too few sightings"), the figures of
    `korgwatch stats`, read from the model's summary rows (review/model_queries.block_stats)."""
    from review.model_queries import block_stats

    return [BlockEstimate(s.block, s.units, s.estimate_text()) for s in block_stats(session, rule)]
