"""Reliability diagram: observed accuracy per confidence bin against the diagonal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.ui.plots._svg import (
    GRID,
    INK,
    MUTED,
    PALETTE,
    RED,
    Scale,
    close_svg,
    data_num,
    esc,
    open_svg,
    text,
    x_axis,
    y_axis,
)

__all__ = ["ReliabilityBin", "reliability_diagram"]

_SIZE = 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 20, 20, 50
_TICKS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    lower: float
    upper: float
    records: int
    confidence: float | None
    accuracy: float | None
    accuracy_lower: float | None = None
    accuracy_upper: float | None = None
    status: str = "ok"


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def reliability_diagram(
    bins: Sequence[ReliabilityBin], *, x_label: str = "mean confidence", y_label: str = "accuracy"
) -> str:
    """Mean confidence (x) against accuracy (y) per bin, with the accuracy's interval.

    For a scored model pass ``x_label="predicted probability"`` and
    ``y_label="observed share of positives"`` (the data attributes keep their names).

    Each bin is a ``<g class="bin">`` with ``data-lower``, ``data-upper``,
    ``data-records``, ``data-confidence``, ``data-accuracy``, ``data-accuracy-lower``,
    ``data-accuracy-upper`` and ``data-status``; miscalibrated bins are red.
    """
    width, height = _SIZE + _LEFT + _RIGHT, _SIZE + _TOP + _BOTTOM
    parts = [
        open_svg(width, height, f"Reliability diagram: {y_label} against {x_label}", "reliability")
    ]
    sx = Scale(0.0, 1.0, _LEFT, _LEFT + _SIZE)
    sy = Scale(0.0, 1.0, _TOP + _SIZE, _TOP)
    pct = "{:.0%}".format
    parts.append(x_axis(sx, _TICKS, y=_TOP + _SIZE, top=_TOP, fmt=pct, label=x_label))
    parts.append(y_axis(sy, _TICKS, x=_LEFT, right=_LEFT + _SIZE, fmt=pct, label=y_label))
    parts.append(
        f'<line class="diagonal" x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(1):.1f}" '
        f'y2="{sy(1):.1f}" stroke="{MUTED}" stroke-dasharray="4 4"/>'
    )
    for b in bins:
        parts.append(_bin(b, sx, sy))
    if not any(b.records for b in bins):
        parts.append(text(_LEFT + 12, _TOP + 24, "no scored records", fill=MUTED))
    parts.append(close_svg())
    return "".join(parts)


def _bin(b: ReliabilityBin, sx: Scale, sy: Scale) -> str:
    attrs = (
        f'class="bin" data-lower="{data_num(b.lower)}" data-upper="{data_num(b.upper)}" '
        f'data-records="{data_num(b.records)}" data-confidence="{data_num(b.confidence)}" '
        f'data-accuracy="{data_num(b.accuracy)}" '
        f'data-accuracy-lower="{data_num(b.accuracy_lower)}" '
        f'data-accuracy-upper="{data_num(b.accuracy_upper)}" data-status="{esc(b.status)}"'
    )
    out = [f"<g {attrs}>"]
    if b.records and _ok(b.accuracy):
        acc = float(b.accuracy or 0.0)
        colour = PALETTE[0] if b.status in ("ok", "") else RED
        x0, x1 = sx(b.lower), sx(b.upper)
        out.append(
            f'<rect x="{x0 + 1:.1f}" y="{sy(acc):.1f}" width="{max(x1 - x0 - 2, 1):.1f}" '
            f'height="{sy(0) - sy(acc):.1f}" fill="{GRID}" fill-opacity="0.6"/>'
        )
        cx = sx(float(b.confidence or 0.0)) if _ok(b.confidence) else (x0 + x1) / 2
        if _ok(b.accuracy_lower) and _ok(b.accuracy_upper):
            out.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{sy(float(b.accuracy_lower or 0)):.1f}" '
                f'y2="{sy(float(b.accuracy_upper or 0)):.1f}" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        tip = f"confidence {b.lower:.0%} to {b.upper:.0%}: accuracy {acc:.1%} over {b.records}"
        out.append(
            f'<circle cx="{cx:.1f}" cy="{sy(acc):.1f}" r="4" fill="{colour}" stroke="{INK}" '
            f'stroke-width="0.5"><title>{esc(tip)}</title></circle>'
        )
    out.append("</g>")
    return "".join(out)
