"""Cumulative improvement of each model line: baseline → shipped → shipped → …"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.format import pct
from service.ui.plots._svg import (
    INK,
    MUTED,
    PALETTE,
    Scale,
    close_svg,
    data_num,
    esc,
    nice_ticks,
    open_svg,
    text,
    tick_format,
    y_axis,
)

__all__ = ["ImprovementStep", "ModelLine", "improvement_chart"]

_W = 760
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 150, 20, 40
_H = 300


@dataclass(frozen=True, slots=True)
class ImprovementStep:
    experiment: str
    lift: float | None
    cumulative: float


@dataclass(frozen=True, slots=True)
class ModelLine:
    name: str
    metric: str = ""
    steps: Sequence[ImprovementStep] = field(default_factory=tuple)


def improvement_chart(lines: Sequence[ModelLine]) -> str:
    """Step lines of cumulative relative improvement, one per model line.

    Step 0 is the baseline (cumulative 0). Every step is a ``<circle class="step">``
    with ``data-line``, ``data-experiment``, ``data-lift`` and ``data-cumulative``.
    """
    parts = [open_svg(_W, _H, "Cumulative improvement of each model line", "improvement")]
    if not any(line.steps for line in lines):
        parts.append(text(_LEFT + 12, _TOP + 24, "nothing shipped yet", fill=MUTED))
        parts.append(close_svg())
        return "".join(parts)
    values = [0.0, *(s.cumulative for ln in lines for s in ln.steps if math.isfinite(s.cumulative))]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, 0.01)
    lo, hi = lo - pad, hi + pad
    most = max(len(ln.steps) for ln in lines)
    sx = Scale(0.0, float(max(most, 1)), _LEFT + 10, _W - _RIGHT)
    sy = Scale(lo, hi, _H - _BOTTOM, _TOP)
    parts.append(
        y_axis(
            sy,
            ticks := nice_ticks(lo, hi, 5),
            x=_LEFT,
            right=_W - _RIGHT,
            fmt=tick_format(ticks, percent=True),
            label="improvement vs first baseline",
        )
    )
    zero = sy(0.0)
    parts.append(
        f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="{INK}"/>'
    )
    parts.append(
        text(_LEFT + 10, _H - _BOTTOM + 18, "baseline", anchor="middle", fill=MUTED, size=11)
    )
    for i, line in enumerate(lines):
        parts.append(_line(line, PALETTE[i % len(PALETTE)], sx, sy))
    parts.append(close_svg())
    return "".join(parts)


def _line(line: ModelLine, colour: str, sx: Scale, sy: Scale) -> str:
    x, y = sx(0), sy(0.0)
    d = [f"M{x:.1f},{y:.1f}"]
    dots = [
        f'<circle class="origin" data-line="{esc(line.name)}" cx="{x:.1f}" cy="{y:.1f}" r="3" '
        f'fill="{colour}"/>'
    ]
    for j, step in enumerate(line.steps, start=1):
        x = sx(j)
        d.append(f"H{x:.1f}")
        y = sy(step.cumulative)
        d.append(f"V{y:.1f}")
        tip = f"{line.name}: {step.experiment} {pct(step.lift)} → {pct(step.cumulative)}"
        dots.append(
            f'<circle class="step" data-line="{esc(line.name)}" '
            f'data-experiment="{esc(step.experiment)}" data-lift="{data_num(step.lift)}" '
            f'data-cumulative="{data_num(step.cumulative)}" cx="{x:.1f}" cy="{y:.1f}" r="4" '
            f'fill="{colour}"><title>{esc(tip)}</title></circle>'
        )
    return (
        f'<g class="model-line" data-line="{esc(line.name)}">'
        f'<path d="{" ".join(d)}" fill="none" stroke="{colour}" stroke-width="2"/>'
        + "".join(dots)
        + _label(line, colour, y)
        + "</g>"
    )


_LABEL_CHARS = 20  # what fits in the right margin at 12 px


def _fit(words: str) -> str:
    return words if len(words) <= _LABEL_CHARS else words[: _LABEL_CHARS - 1] + "…"


def _label(line: ModelLine, colour: str, y: float) -> str:
    """The line's name, and its metric on a second row, each fitted to the right margin
    (the full name is the label's tooltip)."""
    rows = [_fit(line.name)] + ([_fit(f"({line.metric})")] if line.metric else [])
    x = _W - _RIGHT + 8
    spans = "".join(
        f'<tspan x="{x}" dy="{0 if i == 0 else 14}">{esc(row)}</tspan>'
        for i, row in enumerate(rows)
    )
    full = f"{line.name} ({line.metric})" if line.metric else line.name
    return (
        f'<text class="line-label" x="{x}" y="{y + 4:.1f}" fill="{colour}" font-weight="600">'
        f"<title>{esc(full)}</title>{spans}</text>"
    )
