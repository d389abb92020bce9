"""Buckets into windows, and windows into the segments the report shows.

A window is the sum of its buckets (the last 24 hourly buckets for ``day``, the last 7
daily ones for ``week``, the daily ones before those for ``reference``). The segments
shown are chosen by volume: per attribute the ``max_values`` values with the most records
over the week and the reference, the rest folded into ``attribute=other`` (the cell of
every record with the attribute minus the rows shown).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.modelwatch._contrib import SEP, add_into, cell_all, cell_any, cell_value

__all__ = [
    "ALL",
    "OTHER",
    "Bucket",
    "Segment",
    "Windows",
    "choose_segments",
    "parse_bucket",
    "total",
]

ALL = "all"
OTHER = "other"


@dataclass(slots=True)
class Bucket:
    """Sums of one bucket (or window): per cell its stats, and the input sketches
    (``f\\x1f<feature>``, ``s``, ``p`` -> bin -> count)."""

    cells: dict[str, dict[str, float]] = field(default_factory=dict)
    inputs: dict[str, dict[str, float]] = field(default_factory=dict)

    def cell(self, cell: str) -> dict[str, float]:
        return self.cells.get(cell, {})


def parse_bucket(raw: Mapping[str, str]) -> Bucket:
    """A bucket hash as read from Redis (non-numeric ``#`` fields skipped)."""
    out = Bucket()
    for name, text in raw.items():
        if name.startswith("#"):
            continue
        value = float(text)
        head, _, rest = name.partition(SEP)
        if head == "f":
            feature, _, key = rest.rpartition(SEP)
            out.inputs.setdefault(f"f{SEP}{feature}", {})[key] = value
        elif head in ("s", "p"):
            out.inputs.setdefault(head, {})[rest] = value
        else:
            out.cells.setdefault(rest, {})[head] = value
    return out


def total(buckets: Iterable[Bucket]) -> Bucket:
    """The sum of several buckets."""
    out = Bucket()
    for bucket in buckets:
        for cell, stats in bucket.cells.items():
            add_into(out.cells.setdefault(cell, {}), stats)
        for name, bins in bucket.inputs.items():
            add_into(out.inputs.setdefault(name, {}), bins)
    return out


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of the report: the whole population, a value, or an attribute's rest."""

    label: str
    attribute: str | None = None
    value: str | None = None
    folded: tuple[str, ...] = ()
    """For ``attribute=other``: the values shown on their own (subtracted)."""

    def stats(self, window: Bucket) -> dict[str, float]:
        """The segment's sums in ``window``."""
        if self.attribute is None:
            return dict(window.cell(cell_all()))
        if self.value is not None:
            return dict(window.cell(cell_value(self.attribute, self.value)))
        out = dict(window.cell(cell_any(self.attribute)))
        for value in self.folded:
            add_into(out, window.cell(cell_value(self.attribute, value)), -1.0)
        return {k: max(v, 0.0) for k, v in out.items()}


def _label(attribute: str, value: str) -> str:
    return f"{attribute}={value}"


def choose_segments(windows: Iterable[Bucket], max_values: int) -> list[Segment]:
    """``all``, then per attribute (by name) its largest values and ``other`` when some
    records fall outside them."""
    volume: dict[str, dict[str, float]] = {}
    rest: dict[str, float] = {}
    for window in windows:
        for cell, stats in window.cells.items():
            kind, _, tail = cell.partition(SEP)
            n = stats.get("n", 0.0)
            if kind == "v":
                attribute, _, value = tail.partition(SEP)
                per = volume.setdefault(attribute, {})
                per[value] = per.get(value, 0.0) + n
            elif kind == "a":
                rest[tail] = rest.get(tail, 0.0) + n
                volume.setdefault(tail, {})
    out = [Segment(ALL)]
    for attribute in sorted(volume):
        ranked = sorted(volume[attribute].items(), key=lambda kv: (-kv[1], kv[0]))
        shown = [v for v, n in ranked[:max_values] if n > 0]
        out += [Segment(_label(attribute, v), attribute, v) for v in shown]
        if rest.get(attribute, 0.0) - sum(volume[attribute][v] for v in shown) > 0.5:
            folded = OTHER if OTHER not in shown else f"({OTHER})"
            out.append(Segment(_label(attribute, folded), attribute, None, tuple(shown)))
    return out


@dataclass(slots=True)
class Windows:
    """The summed windows and the daily buckets (for trends), with their bounds."""

    day: Bucket
    week: Bucket
    reference: Bucket
    daily: dict[int, Bucket]
    bounds: dict[str, tuple[float, float]]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, hours: Mapping[int, Bucket], days: Mapping[int, Bucket], now: float, ref_days: int
    ) -> Windows:
        h, d = math.floor(now / 3600), math.floor(now / 86_400)
        week = range(d - 6, d + 1)
        ref = range(d - 6 - ref_days, d - 6)
        return cls(
            day=total(hours[i] for i in range(h - 23, h + 1) if i in hours),
            week=total(days[i] for i in week if i in days),
            reference=total(days[i] for i in ref if i in days),
            daily=dict(days),
            bounds={
                "day": ((h - 23) * 3600.0, now),
                "week": ((d - 6) * 86_400.0, now),
                "reference": (ref.start * 86_400.0, ref.stop * 86_400.0),
            },
        )
