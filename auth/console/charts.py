"""Charts as SVG text, drawn on the server: numbers in, markup out, nothing else.

The console's pages run no script (the CSP allows none inline, and the pages must work
without JavaScript), so charts are plain SVG with presentation attributes (fill=, x=,
width=): no style attribute, which the CSP's style-src 'self' would drop. Each chart is
an image with a title and an aria-label, and carries its numbers as a table beside it
(`Figure.headers`/`rows`) for screen readers and for anyone without CSS.

Every label is XML-escaped, and characters XML cannot hold are dropped, so a breach named
`<script>` or an e-mail with a quote stays text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

# Drawn about as wide as a phone's screen, so that text at FONT_SIZE stays at least 12 CSS
# pixels when the chart is scaled down to a 390-pixel-wide window.
WIDTH = 360
FONT_SIZE = 15
FONT = f'font-family="system-ui, sans-serif" font-size="{FONT_SIZE}"'
CHAR_W = 8.5  # a generous average advance at FONT_SIZE, to lay out legends and labels
INK, MUTED, GRID = "#1b1f24", "#57606a", "#d0d7de"
# Okabe-Ito: colours told apart with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")

_XML_UNSAFE = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ID = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


@dataclass(frozen=True)
class Words:
    """The chart's own words, in the reader's language (the caller translates)."""

    no_data: str = "No data yet"
    x_title: str = ""  # under the horizontal axis
    y_title: str = ""  # beside the vertical axis (charts over days)
    span: str = ""  # what the labels cover, for the description; "N days from … to …" if empty


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label (a day, a kind)."""

    name: str
    values: tuple[float, ...]
    colour: str


@dataclass(frozen=True)
class Figure:
    """A chart and the same numbers as a table (headers, then one row per label)."""

    id: str
    title: str
    svg: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: bool = False


def text(value: object) -> str:
    """Safe in XML text and in a double- or single-quoted attribute."""
    return escape(_XML_UNSAFE.sub("", str(value)), {'"': "&quot;", "'": "&apos;"})


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def nice_max(value: float) -> float:
    """The axis top: the next 1, 2 or 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _check(chart_id: str, colours: Sequence[str]) -> None:
    if not _ID.match(chart_id):
        raise ValueError(f"chart id {chart_id!r}: lowercase letters, digits and dashes")
    for colour in colours:
        if not _COLOUR.match(colour):
            raise ValueError(f"colour {colour!r}: expected #RRGGBB")


def _open(chart_id: str, title: str, label: str, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{text(label)}">',
        f"<title>{text(title)}</title>",
        f'<rect class="chart-bg" x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]


def no_data(
    chart_id: str, title: str, headers: Sequence[str] = ("", ""), words: Words = Words()
) -> Figure:
    """An empty chart that says so, rather than an empty frame that looks broken."""
    _check(chart_id, ())
    height = 120
    parts = _open(chart_id, title, f"{title}: {words.no_data}", height)
    parts += [
        f'<rect x="1" y="1" width="{WIDTH - 2}" height="{height - 2}" fill="none" '
        f'stroke="{GRID}" stroke-dasharray="6 4"/>',
        f'<text class="no-data" x="{WIDTH // 2}" y="{height // 2 + 5}" text-anchor="middle" '
        f'fill="{MUTED}" {FONT}>{text(words.no_data)}</text>',
        "</svg>",
    ]
    return Figure(chart_id, title, "\n".join(parts), tuple(headers), (), empty=True)


def bar_chart(
    chart_id: str,
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    value_header: str = "Count",
    label_header: str = "",
    colour: str = PALETTE[0],
    words: Words = Words(),
) -> Figure:
    """Horizontal bars, one per (label, value), lengths proportional to the values; each
    label on its own line above its bar, so a long label needs no room beside it. The
    value axis is titled with `words.x_title`."""
    headers = (label_header, value_header)
    _check(chart_id, (colour,))
    if not items:
        return no_data(chart_id, title, headers, words)
    row_h, pad, left = 46, 10, 4
    plot_w = WIDTH - left - 50
    top = max((v for _, v in items), default=0) or 1
    axis = 24 if words.x_title else 0
    height = pad * 2 + row_h * len(items) + axis
    summary = ", ".join(f"{label} {number(v)}" for label, v in items)
    parts = _open(chart_id, title, f"{title}: {summary}", height)
    for i, (label, value) in enumerate(items):
        y = pad + i * row_h
        w = plot_w * max(value, 0) / top
        parts += [
            f'<text x="{left}" y="{y + 15}" fill="{INK}" {FONT}>{text(label)}</text>',
            f'<rect class="bar" x="{left}" y="{y + 21}" width="{w:.2f}" height="18" '
            f'fill="{colour}" data-value="{number(value)}"/>',
            f'<text x="{left + w + 6:.2f}" y="{y + 35}" fill="{INK}" {FONT}>{number(value)}</text>',
        ]
    bottom = pad + row_h * len(items)
    parts.append(f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{bottom}" stroke="{MUTED}"/>')
    if words.x_title:
        parts.append(
            f'<text class="axis-title" x="{left}" y="{bottom + 18}" fill="{MUTED}" {FONT}>'
            f"{text(words.x_title)}</text>"
        )
    parts.append("</svg>")
    rows = tuple((str(label), number(value)) for label, value in items)
    return Figure(chart_id, title, "\n".join(parts), headers, rows)


# --- charts over days --------------------------------------------------------------------

_LEFT, _RIGHT, _BOTTOM, _PLOT_H, _LEGEND_ROW = 52, 10, 48, 150, 22
TICK_EVERY = 7  # one day labelled a week, counted back from the last


def _legend(series: Sequence[Series]) -> tuple[list[str], int]:
    """The legend, wrapped onto as many rows as the names need; and its height."""
    parts, x, y = [], 4.0, 8
    for s in series:
        width = 16 + CHAR_W * len(s.name) + 14
        if x > 4 and x + width > WIDTH:
            x, y = 4.0, y + _LEGEND_ROW
        parts += [
            f'<rect x="{x:.0f}" y="{y + 3}" width="12" height="12" fill="{s.colour}"/>',
            f'<text x="{x + 16:.0f}" y="{y + 14}" fill="{INK}" {FONT}>{text(s.name)}</text>',
        ]
        x += width
    return parts, y + _LEGEND_ROW + 8


def _frame(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    ymax: float,
    words: Words,
) -> tuple[list[str], int]:
    """The SVG head, a legend, horizontal grid lines with their values, x labels and the
    axes' titles; returns the parts and the plot's top."""
    first, last = labels[0], labels[-1]
    names = ", ".join(s.name for s in series)
    span = words.span or f"{len(labels)} days from {first} to {last}"
    label = f"{title}: {names}, {span}; figures in the table"
    legend, top = _legend(series)
    height = top + _PLOT_H + _BOTTOM
    parts = _open(chart_id, title, label, height) + legend
    # Counts: a middle line only where it falls on a whole number.
    for fraction in (0, 0.5, 1) if (ymax / 2).is_integer() else (0, 1):
        y = top + _PLOT_H * (1 - fraction)
        parts += [
            f'<line x1="{_LEFT}" y1="{y:.2f}" x2="{WIDTH - _RIGHT}" y2="{y:.2f}" stroke="{GRID}"/>',
            f'<text x="{_LEFT - 6}" y="{y + 5:.2f}" text-anchor="end" fill="{MUTED}" {FONT}>'
            f"{number(ymax * fraction)}</text>",
        ]
    shown = range(len(labels) - 1, -1, -TICK_EVERY)
    for i in shown:
        parts.append(
            f'<text x="{_slot_centre(i, len(labels)):.2f}" y="{top + _PLOT_H + 20}" '
            f'text-anchor="middle" fill="{MUTED}" {FONT}>{text(labels[i])}</text>'
        )
    if words.x_title:
        parts.append(
            f'<text class="axis-title" x="{(_LEFT + WIDTH - _RIGHT) / 2:.0f}" '
            f'y="{height - 6}" text-anchor="middle" fill="{MUTED}" {FONT}>'
            f"{text(words.x_title)}</text>"
        )
    if words.y_title:
        middle = top + _PLOT_H / 2
        parts.append(
            f'<text class="axis-title" x="16" y="{middle:.0f}" text-anchor="middle" '
            f'transform="rotate(-90 16 {middle:.0f})" fill="{MUTED}" {FONT}>'
            f"{text(words.y_title)}</text>"
        )
    return parts, top


def _slot_centre(i: int, n: int) -> float:
    slot = (WIDTH - _LEFT - _RIGHT) / n
    return _LEFT + slot * (i + 0.5)


def _validate_days(labels: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r}: {len(s.values)} values for {len(labels)} labels")


def _table(
    labels: Sequence[str], series: Sequence[Series], label_header: str
) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    headers = (label_header, *(s.name for s in series))
    rows = tuple(
        (str(label), *(number(s.values[i]) for s in series)) for i, label in enumerate(labels)
    )
    return headers, rows


def _bar(cls: str, x: float, y: float, w: float, h: float, s: Series, i: int, day: str) -> str:
    return (
        f'<rect class="{cls}" x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" '
        f'fill="{s.colour}" data-value="{number(s.values[i])}">'
        f"<title>{text(day)}: {text(s.name)} {number(s.values[i])}</title></rect>"
    )


def stacked_bars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label_header: str = "Day",
    words: Words = Words(),
) -> Figure:
    """One bar per label, the series stacked in order from the bottom."""
    _check(chart_id, [s.colour for s in series])
    _validate_days(labels, series)
    headers, rows = _table(labels, series, label_header)
    if not labels or not series:
        return no_data(chart_id, title, headers, words)
    totals = [sum(max(s.values[i], 0) for s in series) for i in range(len(labels))]
    ymax = nice_max(max(totals))
    parts, top = _frame(chart_id, title, labels, series, ymax, words)
    slot = (WIDTH - _LEFT - _RIGHT) / len(labels)
    bar_w = min(max(slot * 0.7, 1), 40)
    for i in range(len(labels)):
        base = float(top + _PLOT_H)
        x = _slot_centre(i, len(labels)) - bar_w / 2
        for s in series:
            h = _PLOT_H * max(s.values[i], 0) / ymax
            if h <= 0:
                continue
            base -= h
            parts.append(_bar("segment", x, base, bar_w, h, s, i, labels[i]))
    parts.append("</svg>")
    return Figure(chart_id, title, "\n".join(parts), headers, rows)


def grouped_bars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label_header: str = "Day",
    words: Words = Words(),
) -> Figure:
    """Counts per label (a day) as bars side by side, one per series: each count is a
    bar of its own height, read against the same axis."""
    _check(chart_id, [s.colour for s in series])
    _validate_days(labels, series)
    headers, rows = _table(labels, series, label_header)
    if not labels or not series:
        return no_data(chart_id, title, headers, words)
    ymax = nice_max(max(max(s.values, default=0) for s in series))
    parts, top = _frame(chart_id, title, labels, series, ymax, words)
    slot = (WIDTH - _LEFT - _RIGHT) / len(labels)
    bar_w = min(max(slot * 0.8 / len(series), 1), 20)
    for i in range(len(labels)):
        x = _slot_centre(i, len(labels)) - bar_w * len(series) / 2
        for s in series:
            h = _PLOT_H * max(s.values[i], 0) / ymax
            if h > 0:
                parts.append(_bar("bar", x, top + _PLOT_H - h, bar_w, h, s, i, labels[i]))
            x += bar_w
    parts.append("</svg>")
    return Figure(chart_id, title, "\n".join(parts), headers, rows)
