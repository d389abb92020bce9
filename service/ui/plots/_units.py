"""Units per variant over time, with the sample-ratio-mismatch p-value underneath."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from service.format import count, p_value
from service.ui.plots._svg import (
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

__all__ = ["StepMark", "TimePoint", "units_plot"]

_W = 760
_LEFT, _RIGHT = 70, 120
_UNITS_TOP, _UNITS_H = 20, 190
_SRM_TOP, _SRM_H = 270, 90
_H = 400
_P_FLOOR = 1e-6
# Lines differ by dash as well as colour: equal counts still show both series.
_DASHES = ("none", "7 4", "2 3", "10 3 2 3")


@dataclass(frozen=True, slots=True)
class TimePoint:
    hour: int
    units: Mapping[str, int] = field(default_factory=dict)
    srm_p_value: float | None = None


@dataclass(frozen=True, slots=True)
class StepMark:
    """A rollout step's start: a dashed line across the units panel, labelled with its share."""

    at: float
    step: int
    label: str


def _hour_label(hour: float) -> str:
    moment = dt.datetime.fromtimestamp(hour, tz=dt.UTC)
    return moment.strftime("%d %b %H:%M")


def _log_p(p: float) -> float:
    return math.log10(max(p, _P_FLOOR))


def units_plot(
    points: Sequence[TimePoint],
    variants: Sequence[str],
    *,
    srm_threshold: float = 0.001,
    steps: Sequence[StepMark] = (),
) -> str:
    """Two panels sharing the time axis (hours, UTC): units per variant; SRM p-value (log).

    Each plotted value is a ``<circle>`` with ``data-hour`` (epoch seconds) and either
    ``data-variant``/``data-units`` or ``data-srm-p-value``; each rollout step's start is
    a ``<line class="rollout-step">`` with ``data-step`` and ``data-at``.
    """
    label = "Units per variant over time, and the sample-ratio-mismatch p-value"
    parts = [open_svg(_W, _H, label, "units")]
    if not points:
        parts.append(text(_LEFT + 12, _UNITS_TOP + 24, "no traffic yet", fill=MUTED))
        parts.append(close_svg())
        return "".join(parts)
    hours = [p.hour for p in points]
    h_lo, h_hi = min(hours), max(hours)
    if h_lo == h_hi:
        h_lo, h_hi = h_lo - 3600, h_hi + 3600
    sx = Scale(h_lo, h_hi, _LEFT, _W - _RIGHT)
    top_units = max([1, *(n for p in points for n in p.units.values())]) * 1.08
    sy = Scale(0.0, top_units, _UNITS_TOP + _UNITS_H, _UNITS_TOP)
    tick_hours = _time_ticks(h_lo, h_hi)
    unit_ticks = nice_ticks(0, top_units, 4)
    parts.append(x_axis(sx, tick_hours, y=_UNITS_TOP + _UNITS_H, top=_UNITS_TOP, fmt=lambda v: ""))
    parts.append(
        y_axis(
            sy, unit_ticks, x=_LEFT, right=_W - _RIGHT, fmt=tick_format(unit_ticks), label="units"
        )
    )
    parts.extend(_step_marks(steps, sx, h_lo, h_hi))
    if len(set(hours)) == 1:
        parts.append(
            text(
                _LEFT + 12,
                _UNITS_TOP + 18,
                "one hour of traffic so far: a line over time appears after the next hour",
                fill=MUTED,
            )
        )
    ends: list[tuple[float, str, str]] = []
    for i, variant in enumerate(variants):
        colour = PALETTE[i % len(PALETTE)]
        series = [(p.hour, p.units[variant]) for p in points if variant in p.units]
        if len(series) > 1:
            d = " ".join(
                f"{'M' if j == 0 else 'L'}{sx(h):.1f},{sy(n):.1f}"
                for j, (h, n) in enumerate(series)
            )
            parts.append(
                f'<path class="units-line" data-variant="{esc(variant)}" d="{d}" fill="none" '
                f'stroke="{colour}" stroke-width="2" '
                f'stroke-dasharray="{_DASHES[i % len(_DASHES)]}"/>'
            )
        for hour, n in series:
            parts.append(
                f'<circle class="units" data-hour="{data_num(hour)}" '
                f'data-variant="{esc(variant)}" data-units="{data_num(n)}" cx="{sx(hour):.1f}" '
                f'cy="{sy(n):.1f}" r="2.5" fill="{colour}"><title>'
                f"{esc(variant)}: {count(n)} units at {esc(_hour_label(hour))} UTC</title></circle>"
            )
        if series:
            ends.append((sy(series[-1][1]), variant, colour))
    parts.extend(
        text(_W - _RIGHT + 8, y + 4, variant, fill=colour, weight="600")
        for y, variant, colour in _spread(ends)
    )
    parts.append(_srm_panel(points, sx, tick_hours, srm_threshold))
    parts.append(close_svg())
    return "".join(parts)


def _step_marks(steps: Sequence[StepMark], sx: Scale, h_lo: float, h_hi: float) -> list[str]:
    """Where the hour axis holds it (each point is an hour's start), each step's start."""
    parts = []
    for mark in steps:
        x = sx(min(max(mark.at, h_lo), h_hi))
        parts.append(
            f'<line class="rollout-step" data-step="{mark.step}" data-at="{data_num(mark.at)}" '
            f'x1="{x:.1f}" x2="{x:.1f}" y1="{_UNITS_TOP}" y2="{_UNITS_TOP + _UNITS_H}" '
            f'stroke="{MUTED}" stroke-dasharray="3 3"><title>step {mark.step} ({esc(mark.label)})'
            f" from {esc(_hour_label(mark.at))} UTC</title></line>"
        )
        parts.append(text(x + 3, _UNITS_TOP + 12, mark.label, fill=MUTED, size=11))
    return parts


def _spread(
    labels: list[tuple[float, str, str]], gap: float = 14.0
) -> list[tuple[float, str, str]]:
    """Line-end labels moved apart vertically so equal counts do not print on each other."""
    out: list[tuple[float, str, str]] = []
    for y, name, colour in sorted(labels):
        if out and y - out[-1][0] < gap:
            y = out[-1][0] + gap
        out.append((y, name, colour))
    return out


def _time_ticks(h_lo: int, h_hi: int) -> list[float]:
    span_h = (h_hi - h_lo) / 3600
    step_h = next((s for s in (1, 2, 3, 6, 12, 24, 48, 72, 168) if span_h / s <= 6), 336)
    first = math.ceil(h_lo / (step_h * 3600)) * step_h * 3600
    return [float(t) for t in range(first, h_hi + 1, step_h * 3600)]


def _srm_panel(
    points: Sequence[TimePoint], sx: Scale, tick_hours: list[float], threshold: float
) -> str:
    sy = Scale(_log_p(_P_FLOOR), 0.0, _SRM_TOP + _SRM_H, _SRM_TOP)
    parts = [
        x_axis(
            sx,
            tick_hours,
            y=_SRM_TOP + _SRM_H,
            top=_SRM_TOP,
            fmt=_hour_label,
            label="hour (UTC)",
        ),
        y_axis(
            sy,
            [-6.0, -4.0, -2.0, 0.0],
            x=_LEFT,
            right=_W - _RIGHT,
            fmt=lambda v: f"1e{int(v)}" if v else "1",
        ),
        text(_LEFT, _SRM_TOP - 8, "SRM p-value (log scale)", fill=MUTED),
    ]
    y = sy(_log_p(threshold))
    parts.append(
        f'<line class="srm-threshold" data-threshold="{data_num(threshold)}" x1="{_LEFT}" '
        f'x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{RED}" stroke-dasharray="5 4"/>'
    )
    parts.append(text(_W - _RIGHT + 8, y + 4, f"p = {threshold:g}", fill=RED, size=11))
    for p in points:
        if p.srm_p_value is None or not math.isfinite(p.srm_p_value):
            continue
        bad = p.srm_p_value < threshold
        parts.append(
            f'<circle class="srm" data-hour="{data_num(p.hour)}" '
            f'data-srm-p-value="{data_num(p.srm_p_value)}" cx="{sx(p.hour):.1f}" '
            f'cy="{sy(_log_p(p.srm_p_value)):.1f}" r="{4 if bad else 2.5}" '
            f'fill="{RED if bad else MUTED}"><title>SRM p = {p_value(p.srm_p_value)} at '
            f"{esc(_hour_label(p.hour))} UTC</title></circle>"
        )
    return "".join(parts)
