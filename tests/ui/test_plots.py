"""The SVG plotting functions: well-formed, escaped, and carrying the exact numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from service.ui.plots import (
    ForestRow,
    ImprovementStep,
    Look,
    MdePoint,
    ModelLine,
    ParetoRegion,
    ReliabilityBin,
    TimePoint,
    forest_plot,
    improvement_chart,
    mde_curve,
    pareto_curve,
    reliability_diagram,
    sequential_plot,
    units_plot,
)
from service.ui.plots._svg import nice_ticks
from tests.ui.helpers import plotted

NS = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script>&'


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    return root


def test_forest_rows_carry_the_exact_numbers_and_mark_breaches() -> None:
    rows = [
        ForestRow("b", "all", 0.1 + 0.2, -0.01, 0.61, "inconclusive"),
        ForestRow("b", "device=mobile", 0.3021012294429302, 0.2855, 0.3186, "breached", True),
        ForestRow("b", "country=CA", None, None, None, "inconclusive"),
    ]
    svg = forest_plot(rows, metric="latency_ms", margin=0.05, direction="decrease")
    _parse(svg)
    shown = plotted(svg, "forest", "forest-row", metric="latency_ms")
    assert [(r.num("estimate"), r.num("lower"), r.num("upper")) for r in shown] == [
        (0.30000000000000004, -0.01, 0.61),
        (0.3021012294429302, 0.2855, 0.3186),
        (None, None, None),
    ]
    assert [r.attrs["data-breached"] for r in shown] == ["false", "true", "false"]
    assert "breached" in shown[1].classes and "breached" not in shown[0].classes
    assert svg.count('fill="#b3261e"') >= 3  # breached label, interval, estimate
    assert "no data" in svg
    margin = plotted(svg, "forest", "margin")
    assert [m.num("margin") for m in margin] == [0.05]
    increase = forest_plot(rows[:1], metric="recall", margin=0.02, direction="increase")
    assert [m.num("margin") for m in plotted(increase, "forest", "margin")] == [-0.02]


def test_labels_from_users_are_escaped_everywhere() -> None:
    svgs = [
        forest_plot([ForestRow(EVIL, EVIL, 0.1, 0.0, 0.2, EVIL)], metric=EVIL),
        sequential_plot([Look(1, 10, 0.5, 1.0, 2.0)], design=EVIL),
        units_plot([TimePoint(3600, {EVIL: 5}, 0.5)], [EVIL]),
        pareto_curve([ParetoRegion(EVIL, 10, 5, 0.5, 0.1, 0.5, 0.1, 0.5)]),
        improvement_chart([ModelLine(EVIL, EVIL, [ImprovementStep(EVIL, 0.1, 0.1)])]),
    ]
    for svg in svgs:
        _parse(svg)
        assert "<script" not in svg
        assert "&lt;script&gt;" in svg


def test_sequential_looks_flag_a_crossing() -> None:
    looks = [
        Look(1, 200, 0.25, 1.2, 4.05),
        Look(2, 400, 0.5, -2.9, 2.86),
        Look(3, 600, 0.75, None, 2.34),
    ]
    svg = sequential_plot(looks, design="group_sequential")
    _parse(svg)
    found = plotted(svg, "sequential", "look")
    assert [(el.num("look"), el.num("units"), el.num("information")) for el in found] == [
        (1, 200, 0.25),
        (2, 400, 0.5),
        (3, 600, 0.75),
    ]
    assert [el.num("z") for el in found] == [1.2, -2.9, None]
    assert [el.attrs["data-crossed"] for el in found] == ["false", "true", "false"]
    assert svg.count('class="boundary"') == 2  # upper and lower
    assert "no looks yet" in sequential_plot([], design="fixed")


def test_units_plot_marks_a_sample_ratio_mismatch() -> None:
    points = [
        TimePoint(7200, {"control": 100, "treatment": 100}, 1.0),
        TimePoint(10800, {"control": 200, "treatment": 150}, 0.0004),
    ]
    svg = units_plot(points, ["control", "treatment"], srm_threshold=0.001)
    _parse(svg)
    units = {
        (el.num("hour"), el.attrs["data-variant"]): el.num("units")
        for el in plotted(svg, "units", "units")
    }
    assert units == {
        (7200, "control"): 100,
        (7200, "treatment"): 100,
        (10800, "control"): 200,
        (10800, "treatment"): 150,
    }
    srm = plotted(svg, "units", "srm")
    assert [(el.num("hour"), el.num("srm-p-value")) for el in srm] == [(7200, 1.0), (10800, 0.0004)]
    assert 'r="4" fill="#b3261e"' in svg  # the mismatch is drawn red
    # Equal lines: their end labels are moved apart instead of overprinting.
    equal = units_plot([TimePoint(0, {"a": 5, "b": 5}), TimePoint(3600, {"a": 9, "b": 9})], "ab")
    ys = [t.get("y") for t in _parse(equal).iter(f"{NS}text") if t.text in ("a", "b")]
    assert len(set(ys)) == 2


def test_mde_curve_points_and_markers() -> None:
    svg = mde_curve(
        [MdePoint(7, 0.0465), MdePoint(14, 0.0328), MdePoint(21, None)],
        planned_days=14,
        target=0.05,
    )
    _parse(svg)
    assert [(el.num("days"), el.num("mde")) for el in plotted(svg, "mde", "mde-point")] == [
        (7, 0.0465),
        (14, 0.0328),
        (21, None),
    ]
    assert [el.num("mde") for el in plotted(svg, "mde", "target")] == [0.05]
    assert [el.num("days") for el in plotted(svg, "mde", "planned")] == [14]
    assert "no curve" in mde_curve([])


def test_reliability_and_pareto_carry_their_numbers() -> None:
    bins = [
        ReliabilityBin(0.5, 0.6, 40, 0.55, 0.5, 0.35, 0.65, "ok"),
        ReliabilityBin(0.9, 1.0, 120, 0.95, 0.7, 0.61, 0.78, "overconfident"),
        ReliabilityBin(0.0, 0.1, 0, None, None, None, None, "empty"),
    ]
    svg = reliability_diagram(bins)
    _parse(svg)
    got = plotted(svg, "reliability", "bin")
    assert [(b.num("confidence"), b.num("accuracy"), b.num("records")) for b in got] == [
        (0.55, 0.5, 40),
        (0.95, 0.7, 120),
        (None, None, 0),
    ]
    assert [b.attrs["data-status"] for b in got] == ["ok", "overconfident", "empty"]
    regions = [
        ParetoRegion("country=MX", 100, 60, 0.6, 0.2, 0.6, 0.2, 0.6),
        ParetoRegion("everything else", 400, 40, 0.1, 0.8, 0.4, 1.0, 1.0),
    ]
    svg = pareto_curve(regions)
    _parse(svg)
    got = plotted(svg, "pareto", "region")
    assert [(r.attrs["data-slice"], r.num("cumulative-error-share")) for r in got] == [
        ("country=MX", 0.6),
        ("everything else", 1.0),
    ]


def test_improvement_chart_steps() -> None:
    line = ModelLine(
        "ranking",
        "ctr",
        [ImprovementStep("ranker-v2", 0.1, 0.1), ImprovementStep("ranker-v3", 0.05, 0.155)],
    )
    svg = improvement_chart([line, ModelLine("fraud")])
    _parse(svg)
    steps = plotted(svg, "improvement", "step")
    assert [(s.attrs["data-experiment"], s.num("lift"), s.num("cumulative")) for s in steps] == [
        ("ranker-v2", 0.1, 0.1),
        ("ranker-v3", 0.05, 0.155),
    ]
    assert "nothing shipped yet" in improvement_chart([ModelLine("fraud")])


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, 1.0), (-0.07, 0.31), (0.0, 1270.0), (-4.2, 4.2), (1e-6, 3e-6)]
)
def test_ticks_are_round_and_cover_the_range(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi, 5)
    assert 3 <= len(ticks) <= 12
    assert ticks == sorted(ticks)
    assert ticks[0] >= lo - 1e-12 and ticks[-1] <= hi + 1e-12
    step = ticks[1] - ticks[0]
    assert ticks[0] - step < lo and ticks[-1] + step > hi


def _luminance(colour: str) -> float:
    channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_plot_colours_are_readable_as_text_on_white() -> None:
    from service.ui.plots._svg import GREEN, INK, MUTED, PALETTE, RED

    for colour in (*PALETTE, INK, MUTED, RED, GREEN):
        assert _contrast(colour, "#ffffff") >= 4.5, colour  # WCAG AA for text
    assert _contrast(RED, "#fdecea") >= 4.5  # breached label on its highlighted band
