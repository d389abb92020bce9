"""How every number a person reads is written: terminal, Markdown, dashboard, plots, journal.

One module so that a percent, a p-value or a missing value looks the same everywhere. Every
function takes whatever the JSON held (``None``, ``nan``, a bool, a string) and answers with
text: what cannot be shown as a number is written as :data:`MISSING`, never ``nan`` or
``None``. Pure; imports nothing of ours.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MISSING",
    "NO_DATA",
    "as_float",
    "confidence",
    "count",
    "days",
    "elapsed",
    "guardrail_confidence",
    "interval",
    "interval_of",
    "journal_value",
    "lift",
    "money",
    "number",
    "p_value",
    "p_with_adjusted",
    "pct",
    "plural",
    "plural_noun",
    "readable",
    "segment",
    "share",
    "signed",
    "srm",
    "timestamp",
]

MISSING = "—"
"""The one mark for a value that cannot be shown (no data, not computable)."""

NO_DATA = "no data yet"


def as_float(value: object) -> float | None:
    """``value`` as a finite float, or None (results use null for what cannot be computed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def count(value: object) -> str:
    """A whole number of things: ``10,067`` (rounded, thousands separated)."""
    x = as_float(value)
    return MISSING if x is None else f"{round(x):,}"


def number(value: object) -> str:
    """A mean or a measurement: four significant digits, thousands separated from 1,000 up,
    whole numbers written whole."""
    x = as_float(value)
    if x is None:
        return MISSING
    if abs(x) >= 1000 or (x == int(x) and abs(x) < 1e15):
        return f"{round(x):,}"
    return _no_negative_zero(f"{x:.4g}")


def signed(value: object, digits: int = 4) -> str:
    x = as_float(value)
    return MISSING if x is None else _no_negative_zero(f"{x:+.{digits}g}")


def pct(value: object, *, sign: bool = True, digits: int = 1) -> str:
    """A fraction as a percent: ``0.135`` → ``+13.5%`` (``sign=False``: ``13.5%``)."""
    x = as_float(value)
    if x is None or not math.isfinite(x * 100):
        return MISSING
    text = f"{x:+,.{digits}%}" if sign else f"{x:,.{digits}%}"
    return _no_negative_zero(text)


def elapsed(seconds: object) -> str:
    """A span in its largest unit: ``45 min``, ``3 h``, ``2 d`` (``12 s`` under a minute)."""
    x = as_float(seconds)
    if x is None:
        return MISSING
    x = max(x, 0.0)
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if x >= size:
            return f"{x / size:.0f} {unit}"
    return f"{x:.0f} s"


def share(value: object) -> str:
    """A traffic share as people write it: ``1%``, ``0.5%``, ``20%``."""
    x = as_float(value)
    return MISSING if x is None else f"{x * 100:.4g}%"


def _no_negative_zero(text: str) -> str:
    """``-0.0%`` and ``+0.0%`` say nothing a plain ``0.0%`` does not."""
    body = text.lstrip("+-")
    if body and not any(c in "123456789" for c in body.split("e")[0]):
        return body
    return text


def interval(bounds: object, *, percent: bool) -> str:
    """``[+1.0%, +25.9%]``; one missing bound means the interval is unbounded that way; no
    bounds at all give ``""``."""
    if not isinstance(bounds, Sequence) or isinstance(bounds, str) or len(bounds) != 2:
        return ""
    low, high = bounds
    if as_float(low) is None and as_float(high) is None:
        return ""

    def show(x: object) -> str:
        return pct(x) if percent else signed(x, 3)

    if as_float(high) is None:
        return f"[{show(low)}, +∞)"
    if as_float(low) is None:
        return f"(-∞, {show(high)}]"
    return f"[{show(low)}, {show(high)}]"


def confidence(alpha: object) -> str:
    """The label of an interval at level ``alpha``: ``0.05`` → ``95% CI``, ``0.0025`` →
    ``99.75% CI``."""
    a = as_float(alpha)
    if a is None or not 0 < a < 1:
        return "CI"
    return f"{(1 - a) * 100:.4g}% CI"


def guardrail_confidence(row: object) -> str:
    """``99.5% CI``: a guardrail cell's interval spends its ``alpha`` on each side."""
    alpha = as_float(row.get("alpha")) if isinstance(row, Mapping) else None
    return confidence(None if alpha is None else 2 * alpha)


def lift(effect: object, *, percent: bool, label: str = "") -> str:
    """``+13.5% [+1.0%, +25.9%]`` from ``{"estimate", "ci"}``; ``label`` (e.g. ``95% CI``)
    goes before the interval. No estimate: :data:`NO_DATA`."""
    if not isinstance(effect, Mapping) or as_float(effect.get("estimate")) is None:
        return NO_DATA
    estimate = pct(effect.get("estimate")) if percent else signed(effect.get("estimate"), 3)
    bounds = interval(effect.get("ci"), percent=percent)
    if bounds and label:
        bounds = f"{label} {bounds}"
    return f"{estimate} {bounds}".strip()


def p_value(value: object) -> str:
    """``0.034``, ``< 0.0001``, ``> 0.99``: never ``1`` or ``0`` (a test never proves those)."""
    x = as_float(value)
    if x is None:
        return MISSING
    if x < 1e-4:
        return "< 0.0001"
    if x > 0.99:
        return "> 0.99"
    if x < 0.001:
        return f"{x:.4f}"
    return f"{x:.3f}" if x < 0.01 else f"{x:.2f}"


def p_with_adjusted(row: Mapping[str, Any]) -> str:
    """The p-value, with the multiplicity-adjusted one in brackets when the row has one."""
    text = p_value(row.get("p_value"))
    if "p_adjusted" in row:
        text += f" (adj. {p_value(row.get('p_adjusted'))})"
    return text


def srm(block: object) -> tuple[str, str]:
    """The sample-ratio check as ``(p text, verdict)``: ``("p = 0.34", "no mismatch")``,
    ``("no data yet", "not yet testable")`` before both variants have units."""
    if not isinstance(block, Mapping):
        return NO_DATA, "not yet testable"
    counts = block.get("counts")
    no_units = isinstance(counts, Mapping) and not sum(
        v for v in (as_float(n) for n in counts.values()) if v is not None
    )
    p = as_float(block.get("chi_square_p"))
    if p is None:
        p = as_float(block.get("p_value"))
    if p is None or no_units:
        return NO_DATA, "not yet testable"
    shown = p_value(p)
    words = f"p {shown}" if shown[0] in "<>" else f"p = {shown}"
    return words, ("no mismatch" if block.get("ok") else "mismatch")


def plural_noun(noun: str, n: object) -> str:
    """``user`` → ``users`` unless ``n`` is one."""
    if as_float(n) == 1:
        return noun
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun if noun.endswith("s") and not noun.endswith("ss") else f"{noun}es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{noun[:-1]}ies"
    return f"{noun}s"


def plural(n: object, noun: str) -> str:
    """``1 day``, ``3 days``, ``1,200 users``."""
    return f"{count(n)} {plural_noun(noun, n)}"


def days(value: object) -> str:
    """A number of days: ``1 day``, ``14 days``, ``0.5 days``."""
    x = as_float(value)
    if x is None:
        return MISSING
    if x == int(x):
        return plural(x, "day")
    return f"{x:.2g} days"


def money(value: object, currency: str) -> str:
    """``5,900 USD`` (whole units: these are estimates)."""
    x = as_float(value)
    return MISSING if x is None else f"{round(x):,} {currency}"


def interval_of(block: object, show: Any = pct) -> str:
    """``+8.2% [+4.8%, +11.8%]`` from ``{"estimate", "ci"}`` with ``show`` for each number."""
    if not isinstance(block, Mapping) or as_float(block.get("estimate")) is None:
        return MISSING
    ci = block.get("ci")
    lo, hi = (ci[0], ci[1]) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)
    if as_float(lo) is None or as_float(hi) is None:
        return str(show(block["estimate"]))
    return f"{show(block['estimate'])} [{show(lo)}, {show(hi)}]"


def journal_value(entry: object) -> str:
    """A journal entry's yearly value in words (``354,000 USD [..] a year (at 20,000
    units/day, expected)``), or why there is none."""
    if not isinstance(entry, Mapping):
        return MISSING
    value = entry.get("value")
    if isinstance(value, Mapping):
        currency = str(value.get("currency", ""))
        text = interval_of(value.get("yearly"), lambda x: money(x, currency))
        source = "expected" if value.get("daily_units_source") == "expected" else "observed"
        return f"{text} a year (at {count(value.get('daily_units'))} units/day, {source})"
    note = entry.get("value_note")
    return str(note) if note else MISSING


def segment(value: object) -> str:
    """A segment as ``country=DE, tier=gold``; the whole population is ``all``."""
    if not value:
        return "all"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def timestamp(value: object) -> str:
    """Epoch seconds as ``2026-12-04 16:01 UTC``."""
    x = as_float(value)
    if x is None:
        return MISSING
    return dt.datetime.fromtimestamp(x, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def readable(value: object) -> str:
    """Any JSON value for a person: floats rounded to four significant digits, mappings as
    ``k=v`` pairs, lists comma-separated, null as :data:`MISSING`."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={readable(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value) or MISSING
    return str(value)
