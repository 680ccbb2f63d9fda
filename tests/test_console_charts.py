"""The console's charts: pure functions from numbers to SVG text, read back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from auth.console import charts
from auth.console.charts import Series

SVG = "{http://www.w3.org/2000/svg}"
DAYS = ["11-26", "11-27", "11-28"]


def parse(figure: charts.Figure) -> ET.Element:
    root = ET.fromstring(figure.svg)  # noqa: S314 (our own output; raises if not well-formed)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label", "").startswith(figure.title)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == figure.title
    return root


def elements(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == cls]


def test_a_bar_chart_is_well_formed_svg_with_bars_proportional_to_the_values() -> None:
    figure = charts.bar_chart("chart-a", "Open findings", [("a", 10), ("b", 5), ("c", 0)])
    root = parse(figure)
    widths = [float(b.get("width", "nan")) for b in elements(root, "bar")]
    assert len(widths) == 3
    assert widths[0] > 0 and widths[1] == pytest.approx(widths[0] / 2) and widths[2] == 0
    assert [b.get("data-value") for b in elements(root, "bar")] == ["10", "5", "0"]
    assert figure.headers == ("", "Count")
    assert figure.rows == (("a", "10"), ("b", "5"), ("c", "0"))
    assert "a 10, b 5, c 0" in root.get("aria-label", "")
    assert not figure.empty


def test_stacked_bars_stack_each_days_series_with_heights_proportional_to_the_values() -> None:
    figure = charts.stacked_bars(
        "chart-s",
        "Coverage",
        DAYS,
        [Series("TOTP", (2, 4, 0), "#0072B2"), Series("None", (6, 4, 3), "#BBBBBB")],
    )
    root = parse(figure)
    segments = elements(root, "segment")
    assert len(segments) == 5  # a zero value draws nothing
    heights = {(s.get("x"), s.get("data-value")): float(s.get("height", "nan")) for s in segments}
    by_value: dict[str, set[float]] = {}
    for (_, value), h in heights.items():
        by_value.setdefault(value or "", set()).add(round(h, 1))
    unit = next(iter(by_value["2"]))
    assert by_value["4"] == {round(unit * 2, 1)} and by_value["6"] == {round(unit * 3, 1)}
    # The second series sits on the first: same x, its bottom at the first's top.
    first_day = [s for s in segments if s.get("x") == segments[0].get("x")]
    low, high = first_day
    assert float(high.get("y", "0")) + float(high.get("height", "0")) == pytest.approx(
        float(low.get("y", "0"))
    )
    assert figure.headers == ("Day", "TOTP", "None")
    assert figure.rows[0] == ("11-26", "2", "6")


def test_counts_per_day_are_bars_side_by_side_with_heights_proportional_to_the_values() -> None:
    figure = charts.grouped_bars(
        "chart-g",
        "Resets",
        DAYS,
        [Series("Issued", (0, 10, 5), "#E69F00"), Series("Completed", (2, 0, 5), "#0072B2")],
    )
    root = parse(figure)
    bars = elements(root, "bar")
    assert [b.get("data-value") for b in bars] == ["2", "10", "5", "5"]  # a zero draws nothing
    heights = [float(b.get("height", "nan")) for b in bars]
    assert heights[1] == pytest.approx(2 * heights[2]) == pytest.approx(5 * heights[0])
    bottoms = {round(float(b.get("y", "0")) + float(b.get("height", "0")), 2) for b in bars}
    assert len(bottoms) == 1  # every bar stands on the same axis
    issued, completed = bars[2], bars[3]  # the last day's pair, side by side
    assert float(issued.get("x", "0")) + float(issued.get("width", "0")) == pytest.approx(
        float(completed.get("x", "0"))
    )


def test_axes_are_titled_and_every_text_is_at_least_12_pixels_at_a_phones_width() -> None:
    words = charts.Words("Rien", "Jour", "Réinitialisations")
    figure = charts.grouped_bars(
        "chart-t", "T", DAYS, [Series("s", (1, 2, 3), "#000000")], words=words
    )
    root = parse(figure)
    titles = ["".join(t.itertext()) for t in elements(root, "axis-title")]
    assert titles == ["Jour", "Réinitialisations"]
    # A 390-pixel window leaves the chart about 320 pixels: the scale it is drawn at.
    scale = 320 / float(root.get("viewBox", "0 0 1 1").split()[2])
    for t in root.iter(f"{SVG}text"):
        assert float(t.get("font-size", "0")) * scale >= 12
    bars = charts.bar_chart("chart-b", "T", [("a", 1)], words=charts.Words(x_title="Comptes"))
    assert "Comptes" in ["".join(t.itertext()) for t in elements(parse(bars), "axis-title")]


def test_empty_data_renders_a_chart_that_says_no_data() -> None:
    for figure in (
        charts.bar_chart("chart-e", "Nothing", []),
        charts.stacked_bars("chart-e", "Nothing", [], [Series("x", (), "#000000")]),
        charts.grouped_bars("chart-e", "Nothing", [], []),
    ):
        root = parse(figure)
        assert figure.empty and figure.rows == ()
        texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
        assert texts == ["No data yet"]
        assert "No data yet" in root.get("aria-label", "")


def test_labels_cannot_inject_markup_or_attributes() -> None:
    evil = '<script>alert(1)</script>"\' onload="alert(2)&amp;'
    figure = charts.bar_chart("chart-x", f"Title {evil}", [(evil, 3)])
    root = parse(figure)
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert not [k for e in root.iter() for k in e.attrib if k.startswith("on")]
    label_texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert evil in label_texts  # shown as text, exactly
    assert root.get("aria-label", "").startswith(f"Title {evil}")
    days = charts.grouped_bars("chart-y", "T", [evil], [Series(evil, (1,), "#000000")])
    assert evil in ["".join(t.itertext()) for t in parse(days).iter(f"{SVG}text")]


def test_characters_xml_cannot_hold_are_dropped_from_labels() -> None:
    figure = charts.bar_chart("chart-c", "Breaches", [("bad\x00\x1bname", 1)])
    root = parse(figure)
    assert "badname" in ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_ids_colours_and_series_lengths_are_checked() -> None:
    with pytest.raises(ValueError, match="chart id"):
        charts.bar_chart('x" onload="y', "T", [("a", 1)])
    with pytest.raises(ValueError, match="colour"):
        charts.bar_chart("chart-ok", "T", [("a", 1)], colour='red" onload="x')
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        charts.grouped_bars("chart-ok", "T", DAYS, [Series("s", (1, 2), "#000000")])


def test_the_axis_top_is_a_round_number_at_or_above_the_largest_value() -> None:
    assert [charts.nice_max(v) for v in (0, 1, 3, 7, 10, 11, 240, 5001)] == [
        1,
        1,
        5,
        10,
        10,
        20,
        500,
        10000,
    ]
