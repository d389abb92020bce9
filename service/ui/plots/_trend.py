"""A deployed model's metric in one segment, day by day, against its reference band."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.format import number
from service.ui.plots._svg import (
    GREEN,
    INK,
    MUTED,
    PALETTE,
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
    y_axis,
)

__all__ = ["TrendDay", "trend_plot"]

_W, _H = 360, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 26, 38


@dataclass(frozen=True, slots=True)
class TrendDay:
    day: float
    """Start of the day (Unix seconds, UTC)."""
    value: float | None
    labelled: int


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%m-%d")


def trend_plot(
    days: Sequence[TrendDay],
    *,
    segment: str,
    metric: str,
    reference: float | None,
    band: tuple[float, float] | None,
    status: str,
) -> str:
    """Points (``<circle class="day">``: ``data-day``, ``data-value``, ``data-labelled``)
    joined by a line, the reference value (``<line class="reference">``:
    ``data-reference``) and the band within the margin of it (``<rect class="band">``:
    ``data-low``, ``data-high``). The title colours the segment's status."""
    label = f"{metric} in {segment}, day by day"
    parts = [
        open_svg(
            _W, _H, label, "trend",
            f' data-segment="{esc(segment)}" data-metric="{esc(metric)}"'
            f' data-status="{esc(status)}"',
        )
    ]  # fmt: skip
    colour = RED if status == "degraded" else INK
    parts.append(text(_LEFT, 16, f"{segment}", fill=colour, weight="600"))
    shown = [d for d in days if d.value is not None and math.isfinite(d.value)]
    if not shown:
        parts.append(text(_LEFT, _TOP + 40, "no labelled predictions in these days", fill=MUTED))
        parts.append(close_svg())
        return "".join(parts)
    values = [d.value for d in shown if d.value is not None]
    if reference is not None:
        values.append(reference)
    if band is not None:
        values += list(band)
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, abs(hi) * 0.02, 1e-6)
    lo, hi = lo - pad, hi + pad
    first, last = days[0].day, days[-1].day
    sx = Scale(first, max(last, first + 86_400), _LEFT + 6, _W - _RIGHT)
    sy = Scale(lo, hi, _H - _BOTTOM, _TOP)
    y_ticks = nice_ticks(lo, hi, 4)
    parts.append(y_axis(sy, y_ticks, x=_LEFT, right=_W - _RIGHT, fmt=tick_format(y_ticks)))
    ticks = [days[i].day for i in range(0, len(days), max(len(days) // 4, 1))]
    parts.append(x_axis(sx, ticks, y=_H - _BOTTOM, top=_TOP, fmt=_day))
    if band is not None:
        top, bottom = sy(band[1]), sy(band[0])
        parts.append(
            f'<rect class="band" data-low="{data_num(band[0])}" data-high="{data_num(band[1])}" '
            f'x="{_LEFT:.1f}" y="{top:.1f}" width="{_W - _RIGHT - _LEFT:.1f}" '
            f'height="{max(bottom - top, 0.5):.1f}" fill="{GREEN}" fill-opacity="0.12">'
            f"<title>within the margin of the reference: {number(band[0])} to "
            f"{number(band[1])}</title></rect>"
        )
    if reference is not None:
        y = sy(reference)
        parts.append(
            f'<line class="reference" data-reference="{data_num(reference)}" x1="{_LEFT:.1f}" '
            f'x2="{_W - _RIGHT:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{MUTED}" '
            f'stroke-dasharray="4 3"><title>reference period: {number(reference)}</title></line>'
        )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{sx(d.day):.1f},{sy(d.value):.1f}"
        for i, d in enumerate(shown)
        if d.value is not None
    )
    parts.append(f'<path d="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/>')
    for d in shown:
        assert d.value is not None
        tip = f"{_day(d.day)}: {metric} {number(d.value)} over {d.labelled:,} labelled"
        parts.append(
            f'<circle class="day" data-day="{data_num(d.day)}" data-value="{data_num(d.value)}" '
            f'data-labelled="{d.labelled}" cx="{sx(d.day):.1f}" cy="{sy(d.value):.1f}" r="2.5" '
            f'fill="{PALETTE[0]}"><title>{esc(tip)}</title></circle>'
        )
    parts.append(close_svg())
    return "".join(parts)
