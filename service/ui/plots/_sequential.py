"""The sequential picture: the primary metric's z at each look against the design's boundary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.ui.plots._svg import (
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

__all__ = ["Look", "sequential_plot"]

_W, _H = 760, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 20, 24, 50


@dataclass(frozen=True, slots=True)
class Look:
    look: int
    units: int
    information: float
    z: float | None
    boundary: float | None


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def sequential_plot(looks: Sequence[Look], *, design: str) -> str:
    """z-statistic per look (x: information fraction) with the ± boundary of ``design``.

    Each look is a ``<circle class="look">`` with ``data-look``, ``data-units``,
    ``data-information``, ``data-z`` and ``data-boundary``; a look whose |z| reaches
    its boundary is marked ``data-crossed="true"``.
    """
    label = f"Sequential test of the primary metric ({design}): z at each look vs boundary"
    parts = [open_svg(_W, _H, label, "sequential", f' data-design="{esc(design)}"')]
    z_values = [abs(float(lk.z or 0.0)) for lk in looks if _ok(lk.z)]
    bounds = [lk.boundary for lk in looks if _ok(lk.boundary)]
    top = max([3.0, *z_values, *(b for b in bounds if b is not None and b < 12)]) * 1.1
    x_hi = max([1.0, *(lk.information for lk in looks if _ok(lk.information))])
    sx = Scale(0.0, x_hi, _LEFT, _W - _RIGHT)
    sy = Scale(-top, top, _H - _BOTTOM, _TOP)
    parts.append(
        x_axis(
            sx,
            x_ticks := nice_ticks(0.0, x_hi, 5),
            y=_H - _BOTTOM,
            top=_TOP,
            fmt=lambda v: tick_format(x_ticks, percent=True)(v).lstrip("+"),
            label="information (share of the planned sample)",
        )
    )
    parts.append(
        y_axis(
            sy,
            y_ticks := nice_ticks(-top, top, 6),
            x=_LEFT,
            right=_W - _RIGHT,
            fmt=tick_format(y_ticks),
            label="z",
        )
    )
    zero = sy(0.0)
    parts.append(
        f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="{INK}"/>'
    )
    with_bound = [
        lk for lk in looks if lk.boundary is not None and _ok(lk.boundary) and lk.boundary < 12
    ]
    for sign in (1.0, -1.0):
        pts = [(sx(lk.information), sy(sign * float(lk.boundary or 0.0))) for lk in with_bound]
        if len(pts) == 1:
            pts = [(sx(0.0), pts[0][1]), pts[0]]
        if pts:
            parts.append(
                f'<path class="boundary" d="{_path(pts)}" fill="none" stroke="{RED}" '
                'stroke-width="1.5" stroke-dasharray="6 4"/>'
            )
    if with_bound:
        last = with_bound[-1]
        parts.append(
            text(
                sx(last.information) - 4,
                sy(float(last.boundary or 0.0)) - 6,
                "boundary",
                anchor="end",
                fill=RED,
                size=11,
            )
        )
    pts = [
        (sx(lk.information), sy(max(-top, min(top, float(lk.z or 0.0)))))
        for lk in looks
        if _ok(lk.z)
    ]
    if len(pts) > 1:
        parts.append(
            f'<path class="z-path" d="{_path(pts)}" fill="none" stroke="{PALETTE[0]}" '
            'stroke-width="2"/>'
        )
    for lk in looks:
        parts.append(_look(lk, sx, sy, top))
    if not looks:
        parts.append(text(_LEFT + 12, _TOP + 20, "no looks yet", fill=MUTED))
    parts.append(close_svg())
    return "".join(parts)


def _look(lk: Look, sx: Scale, sy: Scale, top: float) -> str:
    crossed = _ok(lk.z) and _ok(lk.boundary) and abs(float(lk.z or 0.0)) >= float(lk.boundary or 0)
    attrs = (
        f'class="look" data-look="{data_num(lk.look)}" data-units="{data_num(lk.units)}" '
        f'data-information="{data_num(lk.information)}" data-z="{data_num(lk.z)}" '
        f'data-boundary="{data_num(lk.boundary)}" data-crossed="{"true" if crossed else "false"}"'
    )
    if not _ok(lk.z):
        return f"<g {attrs}></g>"
    x, y = sx(lk.information), sy(max(-top, min(top, float(lk.z or 0.0))))
    fill = RED if crossed else PALETTE[0]
    tip = f"look {lk.look}: z = {float(lk.z or 0.0):.2f}, boundary {lk.boundary}, {lk.units} units"
    return (
        f'<circle {attrs} cx="{x:.1f}" cy="{y:.1f}" r="{5 if crossed else 4}" fill="{fill}" '
        f'stroke="white"><title>{esc(tip)}</title></circle>'
    )
