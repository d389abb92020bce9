"""The minimum detectable effect as a function of the experiment's duration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.format import days, pct
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

__all__ = ["MdePoint", "mde_curve"]

_W, _H = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 20, 50


@dataclass(frozen=True, slots=True)
class MdePoint:
    days: float
    mde: float | None


def mde_curve(
    points: Sequence[MdePoint], *, planned_days: float | None = None, target: float | None = None
) -> str:
    """MDE (relative) against days; marks the planned duration and the target MDE.

    Every point is a ``<circle class="mde-point">`` with ``data-days`` and ``data-mde``.
    """
    label = "Minimum detectable effect against the experiment's duration in days"
    parts = [open_svg(_W, _H, label, "mde")]
    good = [p for p in points if p.mde is not None and math.isfinite(p.mde)]
    if not good:
        parts.append(text(_LEFT + 12, _TOP + 24, "no curve for these inputs", fill=MUTED))
        parts.append(close_svg())
        return "".join(parts)
    days_hi = max([p.days for p in good] + ([planned_days] if planned_days else []))
    mde_hi = max([float(p.mde or 0.0) for p in good] + ([target] if target else [])) * 1.1
    sx = Scale(0.0, days_hi, _LEFT, _W - _RIGHT)
    sy = Scale(0.0, mde_hi, _H - _BOTTOM, _TOP)
    parts.append(
        x_axis(
            sx,
            day_ticks := nice_ticks(0, days_hi, 7),
            y=_H - _BOTTOM,
            top=_TOP,
            fmt=tick_format(day_ticks),
            label="days",
        )
    )
    parts.append(
        y_axis(
            sy,
            mde_ticks := nice_ticks(0, mde_hi, 5),
            x=_LEFT,
            right=_W - _RIGHT,
            fmt=lambda v: tick_format(mde_ticks, percent=True)(v).lstrip("+"),
            label="MDE (relative)",
        )
    )
    if target:
        y = sy(target)
        parts.append(
            f'<line class="target" data-mde="{data_num(target)}" x1="{_LEFT}" x2="{_W - _RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}" stroke="{RED}" stroke-dasharray="5 4"/>'
        )
        parts.append(
            text(
                _W - _RIGHT - 4,
                y - 6,
                f"target {pct(target, sign=False)}",
                anchor="end",
                fill=RED,
                size=11,
            )
        )
    if planned_days:
        x = sx(planned_days)
        parts.append(
            f'<line class="planned" data-days="{data_num(planned_days)}" x1="{x:.1f}" '
            f'x2="{x:.1f}" y1="{_TOP}" y2="{_H - _BOTTOM}" stroke="{MUTED}" '
            'stroke-dasharray="3 3"/>'
        )
        parts.append(text(x + 4, _TOP + 12, f"plan: {planned_days:g} days", fill=MUTED, size=11))
    d = " ".join(
        f"{'M' if i == 0 else 'L'}{sx(p.days):.1f},{sy(float(p.mde or 0.0)):.1f}"
        for i, p in enumerate(good)
    )
    parts.append(f'<path d="{d}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    for p in points:
        attrs = f'class="mde-point" data-days="{data_num(p.days)}" data-mde="{data_num(p.mde)}"'
        if p.mde is None or not math.isfinite(p.mde):
            parts.append(f"<g {attrs}></g>")
            continue
        tip = f"{days(p.days)}: MDE {pct(p.mde, sign=False)}"
        parts.append(
            f'<circle {attrs} cx="{sx(p.days):.1f}" cy="{sy(p.mde):.1f}" r="3" '
            f'fill="{PALETTE[0]}"><title>{esc(tip)}</title></circle>'
        )
    parts.append(close_svg())
    return "".join(parts)
