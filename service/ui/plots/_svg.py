"""Small SVG building blocks: escaping, exact numbers for data attributes, scales, axes.

Every text and attribute value goes through :func:`esc`: labels come from experiment
specs and event attributes, i.e. from users.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "FONT",
    "GREEN",
    "INK",
    "MUTED",
    "PALETTE",
    "RED",
    "Scale",
    "close_svg",
    "data_num",
    "esc",
    "nice_ticks",
    "open_svg",
    "text",
    "tick_format",
    "x_axis",
    "y_axis",
]

INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d0d7de"
RED = "#b3261e"
GREEN = "#1a7f37"
# Okabe-Ito hues, darkened where needed so each reads as text on white (contrast >= 4.5).
PALETTE = ("#0072b2", "#b84d00", "#00875a", "#a6447c", "#7a5c00", "#000000")
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def data_num(value: float | int | None) -> str:
    """A number as written in ``data-*`` attributes: exact (``repr``), empty for missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def tick_format(ticks: Sequence[float], *, percent: bool = False) -> Callable[[float], str]:
    """Labels for evenly spaced ``ticks`` with as many decimals as the step needs, so no two
    ticks read alike and the spacing reads even (2.5% steps say 2.5%, not 2% then 3%)."""
    gaps = [abs(b - a) for a, b in itertools.pairwise(ticks) if b != a]
    scale = 100.0 if percent else 1.0
    step = min(gaps) * scale if gaps else 1.0
    digits = 0
    while digits < 6 and abs(round(step, digits) - step) > 1e-9 * max(step, 1e-12):
        digits += 1

    def label(value: float) -> str:
        x = value * scale
        if abs(x) < step * 1e-6:
            return "0" + ("%" if percent else "")
        if percent:
            return f"{x:+,.{digits}f}%"
        return f"{x:,.{digits}f}"

    return label


@dataclass(frozen=True, slots=True)
class Scale:
    """Linear map from the data interval [lo, hi] to pixels [a, b]."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo
        if span == 0:
            return (self.a + self.b) / 2
        return self.a + (value - self.lo) / span * (self.b - self.a)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (about ``count`` of them)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def open_svg(width: int, height: int, label: str, kind: str, extra: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot plot-{esc(kind)}" '
        f'data-plot="{esc(kind)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{esc(label)}" '
        f'font-family="{esc(FONT)}" font-size="12"{extra}>'
        f"<title>{esc(label)}</title>"
    )


def close_svg() -> str:
    return "</svg>"


def text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    fill: str = INK,
    size: int | None = None,
    weight: str | None = None,
) -> str:
    attrs = f'x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"'
    if size is not None:
        attrs += f' font-size="{size}"'
    if weight is not None:
        attrs += f' font-weight="{weight}"'
    return f"<text {attrs}>{esc(content)}</text>"


def x_axis(
    scale: Scale,
    ticks: Sequence[float],
    *,
    y: float,
    top: float,
    fmt: Callable[[float], str],
    label: str = "",
) -> str:
    """Vertical grid lines at ``ticks`` from ``top`` down to ``y``, labels under ``y``."""
    parts = [
        f'<line x1="{scale.a:.1f}" x2="{scale.b:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{MUTED}"/>'
    ]
    for tick in ticks:
        x = scale(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{y:.1f}" stroke="{GRID}" '
            'stroke-width="1"/>'
        )
        parts.append(text(x, y + 16, fmt(tick), anchor="middle", fill=MUTED, size=11))
    if label:
        parts.append(text((scale.a + scale.b) / 2, y + 34, label, anchor="middle", fill=MUTED))
    return "".join(parts)


def y_axis(
    scale: Scale,
    ticks: Sequence[float],
    *,
    x: float,
    right: float,
    fmt: Callable[[float], str],
    label: str = "",
) -> str:
    """Horizontal grid lines at ``ticks`` from ``x`` to ``right``, labels left of ``x``."""
    parts = [
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{scale.a:.1f}" y2="{scale.b:.1f}" stroke="{MUTED}"/>'
    ]
    for tick in ticks:
        y = scale(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(text(x - 6, y + 4, fmt(tick), anchor="end", fill=MUTED, size=11))
    if label:
        mid = (scale.a + scale.b) / 2
        parts.append(
            f'<text transform="translate({x - 44:.1f},{mid:.1f}) rotate(-90)" '
            f'text-anchor="middle" fill="{MUTED}">{esc(label)}</text>'
        )
    return "".join(parts)
