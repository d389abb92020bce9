"""Number and label formatting shared by the terminal and Markdown reports (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "DASH",
    "as_float",
    "ci",
    "count",
    "lift",
    "number",
    "p_text",
    "p_value",
    "pct",
    "plural",
    "segment",
    "signed",
]

DASH = "-"


def as_float(value: object) -> float | None:
    """``value`` as a finite float, or None (results use null for what cannot be computed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number_ = float(value)
    return number_ if math.isfinite(number_) else None


def count(value: object) -> str:
    x = as_float(value)
    return DASH if x is None else f"{x:,.0f}"


def number(value: object) -> str:
    """A mean: four significant digits, thousands separated from 10,000 up."""
    x = as_float(value)
    if x is None:
        return DASH
    if abs(x) >= 10_000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def signed(value: object, digits: int = 4) -> str:
    x = as_float(value)
    return DASH if x is None else f"{x:+.{digits}g}"


def pct(value: object, *, sign: bool = True, digits: int = 1) -> str:
    x = as_float(value)
    if x is None:
        return DASH
    return f"{x:+.{digits}%}" if sign else f"{x:.{digits}%}"


def ci(bounds: object, *, percent: bool) -> str:
    if not isinstance(bounds, Sequence) or isinstance(bounds, str) or len(bounds) != 2:
        return ""
    low, high = bounds
    if as_float(low) is None and as_float(high) is None:
        return ""
    if as_float(high) is None:  # one bound alone: the interval is unbounded that way
        return f"[{pct(low) if percent else signed(low, 3)}, +∞)"
    if as_float(low) is None:
        return f"(-∞, {pct(high) if percent else signed(high, 3)}]"
    if percent:
        return f"[{pct(low)}, {pct(high)}]"
    return f"[{signed(low, 3)}, {signed(high, 3)}]"


def lift(effect: object, *, percent: bool) -> str:
    """``+13.5% [+1.0%, +25.9%]`` from ``{"estimate", "ci"}``."""
    if not isinstance(effect, Mapping):
        return DASH
    estimate = pct(effect.get("estimate")) if percent else signed(effect.get("estimate"), 3)
    interval = ci(effect.get("ci"), percent=percent)
    return f"{estimate} {interval}".strip()


def p_value(row: Mapping[str, Any]) -> str:
    """The p-value, with the multiplicity-adjusted one in brackets when the row has one."""

    text = p_text(row.get("p_value"))
    if "p_adjusted" in row:
        text += f" ({p_text(row.get('p_adjusted'))})"
    return text


def p_text(value: object) -> str:
    x = as_float(value)
    if x is None:
        return DASH
    if x < 1e-4:
        return "<0.0001"
    return f"{x:.4f}" if x < 0.001 else f"{x:.3f}"


def segment(value: object) -> str:
    if not value:
        return "all"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def plural(unit: str, n: float) -> str:
    """``user`` -> ``users`` (the spec's randomization unit, in words)."""
    if n == 1:
        return unit
    return unit if unit.endswith("s") else f"{unit}s"
