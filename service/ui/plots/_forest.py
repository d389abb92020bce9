"""Forest plot: relative lift with its confidence interval, one row per variant and segment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.format import pct
from service.ui.plots._svg import (
    GREEN,
    INK,
    MUTED,
    RED,
    Scale,
    close_svg,
    data_num,
    esc,
    nice_ticks,
    open_svg,
    text,
    tick_format,
    x_axis,
)

__all__ = ["ForestRow", "forest_plot"]

_WIDTH = 860
_LABEL_W = 250
_VALUE_W = 210
_ROW_H = 26
_TOP = 30
_BOTTOM = 46
# Intervals wider than this are clipped (an arrow marks the cut); the data attributes
# still carry the exact numbers.
_CLIP = 1.0


@dataclass(frozen=True, slots=True)
class ForestRow:
    variant: str
    segment: str
    estimate: float | None
    lower: float | None
    upper: float | None
    status: str
    breached: bool = False


def _finite(*values: float | None) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _colour(row: ForestRow) -> str:
    if row.breached or row.status in ("breached", "worse"):
        return RED
    if row.status == "better":
        return GREEN
    return INK


def forest_plot(
    rows: Sequence[ForestRow],
    *,
    metric: str,
    margin: float | None = None,
    direction: str = "increase",
) -> str:
    """SVG forest plot of relative lifts; breached rows drawn in red.

    ``margin`` (relative, positive) draws the guardrail's non-inferiority line on the
    harmful side: ``-margin`` when the metric should increase, ``+margin`` otherwise.
    Each row is a ``<g class="forest-row">`` whose ``data-estimate``, ``data-lower``
    and ``data-upper`` carry the plotted numbers exactly.
    """
    margin_at = None if margin is None else (-margin if direction == "increase" else margin)
    values = [0.0, *_finite(*(v for r in rows for v in (r.estimate, r.lower, r.upper)))]
    if margin_at is not None:
        values.append(margin_at)
    lo = max(min(values), -_CLIP)
    hi = min(max(values), _CLIP)
    pad = max((hi - lo) * 0.08, 0.005)
    lo, hi = lo - pad, hi + pad
    height = _TOP + _BOTTOM + _ROW_H * max(len(rows), 1)
    plot_right = _WIDTH - _VALUE_W - 10
    scale = Scale(lo, hi, _LABEL_W, plot_right)
    bottom = height - _BOTTOM
    label = f"Forest plot of the relative lift of {metric}, by variant and segment"
    parts = [
        open_svg(_WIDTH, height, label, "forest", f' data-metric="{esc(metric)}"'),
        *(
            f'<rect class="breach-band" x="2" y="{_TOP + i * _ROW_H + 1}" width="{_WIDTH - 4}" '
            f'height="{_ROW_H - 2}" fill="#fdecea" rx="3"/>'
            for i, row in enumerate(rows)
            if row.breached
        ),
        text(8, 18, "variant · segment", fill=MUTED, weight="600"),
        text(_WIDTH - 8, 18, "lift [CI]", anchor="end", fill=MUTED, weight="600"),
        x_axis(
            scale,
            ticks := nice_ticks(lo, hi, 6),
            y=bottom,
            top=_TOP - 6,
            fmt=tick_format(ticks, percent=True),
            label="relative lift vs baseline",
        ),
    ]
    zero = scale(0.0)
    parts.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{_TOP - 6}" y2="{bottom:.1f}" '
        f'stroke="{INK}" stroke-width="1.5"/>'
    )
    if margin_at is not None:
        x = scale(margin_at)
        parts.append(
            f'<line class="margin" data-margin="{data_num(margin_at)}" x1="{x:.1f}" '
            f'x2="{x:.1f}" y1="{_TOP - 6}" y2="{bottom:.1f}" stroke="{RED}" '
            'stroke-dasharray="5 4" stroke-width="1.5"/>'
        )
        parts.append(text(x, _TOP - 10, "margin", anchor="middle", fill=RED, size=11))
    if not rows:
        parts.append(text(_LABEL_W, _TOP + 16, "no data yet", fill=MUTED))
    for i, row in enumerate(rows):
        parts.append(_row(row, scale, _TOP + i * _ROW_H, lo, hi))
    parts.append(close_svg())
    return "".join(parts)


def _row(row: ForestRow, scale: Scale, top: float, lo: float, hi: float) -> str:
    colour = _colour(row)
    mid = top + _ROW_H / 2
    classes = "forest-row breached" if row.breached else "forest-row"
    out = [
        f'<g class="{classes}" data-variant="{esc(row.variant)}" '
        f'data-segment="{esc(row.segment)}" data-estimate="{data_num(row.estimate)}" '
        f'data-lower="{data_num(row.lower)}" data-upper="{data_num(row.upper)}" '
        f'data-status="{esc(row.status)}" data-breached="{"true" if row.breached else "false"}">'
    ]
    weight = "600" if row.breached else None
    out.append(text(8, mid + 4, f"{row.variant} · {row.segment}", fill=colour, weight=weight))
    value = "no data"
    if row.estimate is not None and math.isfinite(row.estimate):
        value = f"{pct(row.estimate)} [{pct(row.lower)}, {pct(row.upper)}]"
        lower = row.lower if row.lower is not None and math.isfinite(row.lower) else lo
        upper = row.upper if row.upper is not None and math.isfinite(row.upper) else hi
        x1, x2 = scale(max(lower, lo)), scale(min(upper, hi))
        out.append(
            f'<line class="ci" x1="{x1:.1f}" x2="{x2:.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        if lower < lo:
            out.append(_arrow(x1, mid, -1, colour))
        if upper > hi:
            out.append(_arrow(x2, mid, 1, colour))
        x = scale(min(max(row.estimate, lo), hi))
        out.append(
            f'<rect class="estimate" x="{x - 5:.1f}" y="{mid - 5:.1f}" width="10" height="10" '
            f'fill="{colour}"/>'
        )
    if row.breached:
        value += " breached"
    out.append(text(_WIDTH - 8, mid + 4, value, anchor="end", fill=colour, size=11, weight=weight))
    out.append("</g>")
    return "".join(out)


def _arrow(x: float, y: float, side: int, colour: str) -> str:
    tip = x + 6 * side
    return (
        f'<path d="M{x:.1f},{y - 4:.1f} L{tip:.1f},{y:.1f} L{x:.1f},{y + 4:.1f} Z" '
        f'fill="{colour}"/>'
    )
