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

WIDTH = 480  # drawn about this wide on a laptop: text stays legible
FONT = 'font-family="system-ui, sans-serif" font-size="13"'
INK, MUTED, GRID = "#1b1f24", "#57606a", "#d0d7de"
# Okabe-Ito: colours told apart with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")

_XML_UNSAFE = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ID = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


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


def no_data(chart_id: str, title: str, headers: Sequence[str] = ("", "")) -> Figure:
    """An empty chart that says so, rather than an empty frame that looks broken."""
    _check(chart_id, ())
    height = 120
    parts = _open(chart_id, title, f"{title}: no data yet", height)
    parts += [
        f'<rect x="1" y="1" width="{WIDTH - 2}" height="{height - 2}" fill="none" '
        f'stroke="{GRID}" stroke-dasharray="6 4"/>',
        f'<text class="no-data" x="{WIDTH // 2}" y="{height // 2 + 5}" text-anchor="middle" '
        f'fill="{MUTED}" {FONT}>No data yet</text>',
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
) -> Figure:
    """Horizontal bars, one per (label, value), lengths proportional to the values."""
    headers = (label_header, value_header)
    _check(chart_id, (colour,))
    if not items:
        return no_data(chart_id, title, headers)
    label_w, row_h, pad = 170, 30, 12
    plot_w = WIDTH - label_w - 50
    top = max((v for _, v in items), default=0) or 1
    height = pad * 2 + row_h * len(items)
    summary = ", ".join(f"{label} {number(v)}" for label, v in items)
    parts = _open(chart_id, title, f"{title}: {summary}", height)
    for i, (label, value) in enumerate(items):
        y = pad + i * row_h
        w = plot_w * max(value, 0) / top
        parts += [
            f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end" fill="{INK}" {FONT}>'
            f"{text(label)}</text>",
            f'<rect class="bar" x="{label_w}" y="{y + 5}" width="{w:.2f}" height="{row_h - 10}" '
            f'fill="{colour}" data-value="{number(value)}"/>',
            f'<text x="{label_w + w + 6:.2f}" y="{y + 19}" fill="{INK}" {FONT}>'
            f"{number(value)}</text>",
        ]
    parts.append(
        f'<line x1="{label_w}" y1="{pad}" x2="{label_w}" y2="{height - pad}" stroke="{MUTED}"/>'
    )
    parts.append("</svg>")
    rows = tuple((str(label), number(value)) for label, value in items)
    return Figure(chart_id, title, "\n".join(parts), headers, rows)


# --- charts over days --------------------------------------------------------------------

_LEFT, _RIGHT, _TOP, _BOTTOM, _HEIGHT = 44, 12, 40, 28, 240


def _frame(
    chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series], ymax: float
) -> list[str]:
    """The SVG head, a legend, horizontal grid lines with their values, and x labels."""
    first, last = labels[0], labels[-1]
    names = ", ".join(s.name for s in series)
    label = f"{title}: {names}, {len(labels)} days from {first} to {last}; figures in the table"
    parts = _open(chart_id, title, label, _HEIGHT)
    x = _LEFT
    for s in series:  # the legend, on one line above the plot
        parts += [
            f'<rect x="{x}" y="10" width="12" height="12" fill="{s.colour}"/>',
            f'<text x="{x + 16}" y="20" fill="{INK}" {FONT}>{text(s.name)}</text>',
        ]
        x += 16 + 8 * len(s.name) + 16
    plot_h = _HEIGHT - _TOP - _BOTTOM
    # Counts: a middle line only where it falls on a whole number.
    for fraction in (0, 0.5, 1) if (ymax / 2).is_integer() else (0, 1):
        y = _TOP + plot_h * (1 - fraction)
        parts += [
            f'<line x1="{_LEFT}" y1="{y:.2f}" x2="{WIDTH - _RIGHT}" y2="{y:.2f}" stroke="{GRID}"/>',
            f'<text x="{_LEFT - 6}" y="{y + 4:.2f}" text-anchor="end" fill="{MUTED}" {FONT}>'
            f"{number(ymax * fraction)}</text>",
        ]
    step = max(1, math.ceil(len(labels) / 6))
    shown = sorted(set(range(0, len(labels), step)) | {len(labels) - 1})
    for i in shown:
        parts.append(
            f'<text x="{_slot_centre(i, len(labels)):.2f}" y="{_HEIGHT - 8}" text-anchor="middle" '
            f'fill="{MUTED}" {FONT}>{text(labels[i])}</text>'
        )
    return parts


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


def stacked_bars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label_header: str = "Day",
) -> Figure:
    """One bar per label, the series stacked in order from the bottom."""
    _check(chart_id, [s.colour for s in series])
    _validate_days(labels, series)
    headers, rows = _table(labels, series, label_header)
    if not labels or not series:
        return no_data(chart_id, title, headers)
    totals = [sum(max(s.values[i], 0) for s in series) for i in range(len(labels))]
    ymax = nice_max(max(totals))
    parts = _frame(chart_id, title, labels, series, ymax)
    plot_h = _HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / len(labels)
    bar_w = min(max(slot * 0.7, 1), 40)
    for i in range(len(labels)):
        base = float(_TOP + plot_h)
        x = _slot_centre(i, len(labels)) - bar_w / 2
        for s in series:
            h = plot_h * max(s.values[i], 0) / ymax
            if h <= 0:
                continue
            base -= h
            parts.append(
                f'<rect class="segment" x="{x:.2f}" y="{base:.2f}" width="{bar_w:.2f}" '
                f'height="{h:.2f}" fill="{s.colour}" data-value="{number(s.values[i])}">'
                f"<title>{text(labels[i])}: {text(s.name)} {number(s.values[i])}</title></rect>"
            )
    parts.append("</svg>")
    return Figure(chart_id, title, "\n".join(parts), headers, rows)


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label_header: str = "Day",
) -> Figure:
    """One line per series, a dot on each value (a single day still shows)."""
    _check(chart_id, [s.colour for s in series])
    _validate_days(labels, series)
    headers, rows = _table(labels, series, label_header)
    if not labels or not series:
        return no_data(chart_id, title, headers)
    ymax = nice_max(max(max(s.values, default=0) for s in series))
    parts = _frame(chart_id, title, labels, series, ymax)
    plot_h = _HEIGHT - _TOP - _BOTTOM

    def y_of(value: float) -> float:
        return _TOP + plot_h * (1 - max(value, 0) / ymax)

    for s in series:
        points = [(_slot_centre(i, len(labels)), y_of(v)) for i, v in enumerate(s.values)]
        path = " ".join(f"{x:.2f},{y:.2f}" for x, y in points)
        parts.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{s.colour}" '
            f'stroke-width="2"/>'
        )
        for (x, y), value, label in zip(points, s.values, labels, strict=True):
            parts.append(
                f'<circle class="dot" cx="{x:.2f}" cy="{y:.2f}" r="3" fill="{s.colour}" '
                f'data-value="{number(value)}"><title>{text(label)}: {text(s.name)} '
                f"{number(value)}</title></circle>"
            )
    parts.append("</svg>")
    return Figure(chart_id, title, "\n".join(parts), headers, rows)
