"""A deployed binary model's traffic over a simulated period, with planted changes (seeded).

Records carry a score ``p`` (the model's calibrated probability of class 1: the truth
draws the label from it, so the model is right about its own error rate), one attribute
``region`` (``r0`` ... ``r{segments-1}``, equal volumes), and three features: ``amount``
(log-normal), ``age`` (normal) and ``channel`` (a category code 0-3). What is planted:

* a **degradation** of one region from ``since`` on: a share ``drop`` of its records get
  the wrong label for their prediction (the opposite of ``p >= 0.5``), so its accuracy
  falls by exactly ``drop`` relative (``0.2``: -20 %), and recall, precision and log loss
  worsen with it;
* a **drift** of one feature from ``since`` on: ``amount`` multiplied by ``factor``, or
  ``age`` shifted by ``factor`` standard deviations (the score does not use the
  features, so only the inputs move).

Labels arrive ``label_delay_h`` hours after their prediction on average (exponential).
``arrays`` gives numpy columns (for ``validate_model_monitor.py``); ``records`` the same
traffic as ``log_prediction`` keyword arguments with each label's arrival time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Line", "Sums", "Traffic", "arrays", "records"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Line:
    segments: int = 10
    per_day: int = 5000
    """Records per segment per day."""
    days: int = 35
    seed: int = 0
    label_delay_h: float = 2.0
    degrade_segment: int | None = None
    degrade_since: float | None = None
    drop: float = 0.2
    drift_feature: str | None = None
    drift_since: float | None = None
    factor: float = 2.0


@dataclass(frozen=True, slots=True)
class Traffic:
    ts: FloatArray
    segment: IntArray
    p: FloatArray
    y: IntArray
    amount: FloatArray
    age: FloatArray
    channel: IntArray
    label_at: FloatArray


def arrays(line: Line, end: float) -> Traffic:
    """``line.days`` days of traffic ending at ``end`` (Unix seconds), sorted by time."""
    rng = np.random.default_rng(line.seed)
    n = line.segments * line.per_day * line.days
    start = end - line.days * 86_400.0
    ts = np.sort(rng.uniform(start, end, n))
    segment = rng.integers(0, line.segments, n)
    bias = np.linspace(-1.2, 0.4, line.segments)[segment]
    logit = bias + rng.normal(0.0, 1.6, n)
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int64)
    if line.degrade_segment is not None and line.degrade_since is not None:
        hit = (segment == line.degrade_segment) & (ts >= line.degrade_since)
        forced = hit & (rng.random(n) < line.drop)
        y = np.where(forced, (p < 0.5).astype(np.int64), y)
    amount = np.exp(rng.normal(3.0, 1.0, n))
    age = rng.normal(40.0, 10.0, n)
    channel = rng.choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05]).astype(np.int64)
    if line.drift_feature is not None and line.drift_since is not None:
        moved = ts >= line.drift_since
        if line.drift_feature == "amount":
            amount = np.where(moved, amount * line.factor, amount)
        elif line.drift_feature == "age":
            age = np.where(moved, age + 10.0 * line.factor, age)
    label_at = ts + rng.exponential(line.label_delay_h * 3600.0, n)
    return Traffic(ts, segment, p, y, amount, age, channel, label_at)


def records(line: Line, end: float) -> Iterator[tuple[dict[str, Any], int, float]]:
    """``(log_prediction kwargs, label, label arrival)`` per record, oldest first."""
    t = arrays(line, end)
    for i in range(t.ts.size):
        kwargs = {
            "record_id": f"s{line.seed}-{i}",
            "prediction": round(float(t.p[i]), 6),
            "features": {
                "amount": round(float(t.amount[i]), 3),
                "age": round(float(t.age[i]), 2),
                "channel": int(t.channel[i]),
            },
            "attributes": {"region": f"r{int(t.segment[i])}"},
            "timestamp": float(t.ts[i]),
        }
        yield kwargs, int(t.y[i]), float(t.label_at[i])


_EPS = 1e-15
_CAL_BINS = 10


def _columns(t: Traffic, calibration: bool) -> dict[str, FloatArray]:
    """Each record's label-dependent sums for a scored binary model (``label_stats``
    vectorised; the tests hold the two equal)."""
    pos, pred = t.y == 1, t.p >= 0.5
    correct = pos == pred
    p_true = np.where(pos, t.p, 1.0 - t.p)
    loss = -np.log(np.clip(p_true, _EPS, 1.0))
    top = np.maximum(t.p, 1.0 - t.p)
    one = np.ones(t.ts.size)
    columns: dict[str, FloatArray] = {
        "l": one,
        "k": correct * 1.0,
        "tp": (pos & pred) * 1.0,
        "fp": (~pos & pred) * 1.0,
        "fn": (pos & ~pred) * 1.0,
        "ln": one,
        "ls": loss,
        "lq": loss * loss,
        "en": one,
        "es": np.abs(t.p - t.y),
        "eq": (t.p - t.y) ** 2,
    }
    cal = np.minimum((top * _CAL_BINS).astype(np.int64), _CAL_BINS - 1)
    for b in range(_CAL_BINS if calibration else 0):
        inb = (cal == b) * 1.0
        columns[f"c{b}n"] = inb
        columns[f"c{b}s"] = inb * top
        columns[f"c{b}k"] = inb * correct
    return columns


class Sums:
    """The monitor's windows over ``t`` at any time, as the buckets would hold them (the
    records predicted by then, the labels arrived by then). Without ``calibration`` the
    ECE is left out, which is faster for long simulations. Days whose every record and
    label is in by then are summed once."""

    def __init__(
        self, t: Traffic, segments: int, reference_days: int, *, calibration: bool = True
    ) -> None:
        self.t = t
        self.segments = segments
        self.reference_days = reference_days
        self.columns = _columns(t, calibration)
        self._final: dict[int, Any] = {}
        day = np.floor(t.ts / 86_400).astype(np.int64)
        self._day_first = int(day[0]) if day.size else 0
        self._day_done = np.full(int(day[-1]) - self._day_first + 1 if day.size else 0, -np.inf)
        np.maximum.at(self._day_done, day - self._day_first, np.maximum(t.label_at, t.ts))

    def _slice(self, lo: float, hi: float) -> slice:
        ts = self.t.ts
        return slice(int(np.searchsorted(ts, lo, "left")), int(np.searchsorted(ts, hi, "right")))

    def _buckets(self, at: float, grain_s: int, first: int, last: int) -> dict[int, Any]:
        from service.modelwatch._windows import Bucket

        t, segments = self.t, self.segments
        part = self._slice(first * grain_s, min((last + 1) * grain_s, at))
        idx = np.floor(t.ts[part] / grain_s).astype(np.int64)
        group = (idx - first) * segments + t.segment[part]
        width = (last - first + 1) * segments
        labelled = (t.label_at[part] <= at) * 1.0
        sums = {"n": np.bincount(group, minlength=width).astype(np.float64)}
        for name, col in self.columns.items():
            sums[name] = np.bincount(group, weights=col[part] * labelled, minlength=width)
        out: dict[int, Any] = {}
        for i in range(last - first + 1):
            rows = slice(i * segments, (i + 1) * segments)
            per = {name: col[rows] for name, col in sums.items()}
            if per["n"].sum() == 0:
                continue
            whole = {name: float(col.sum()) for name, col in per.items()}
            cells = {"": whole, "a\x1fregion": dict(whole)}
            for s in range(segments):
                cells[f"v\x1fregion\x1fr{s}"] = {name: float(c[s]) for name, c in per.items()}
            out[first + i] = Bucket(cells=cells)
        return out

    def _days(self, at: float, first: int, last: int) -> dict[int, Any]:
        out = {d: b for d, b in self._final.items() if first <= d <= last}
        todo = [d for d in range(first, last + 1) if d not in self._final]
        if todo:
            fresh = self._buckets(at, 86_400, todo[0], todo[-1])
            out.update(fresh)
            for d, bucket in fresh.items():
                k = d - self._day_first
                if 0 <= k < self._day_done.size and self._day_done[k] <= at:
                    self._final[d] = bucket
        return out

    def windows(self, at: float) -> Any:
        """``service.modelwatch._report.Windows`` at time ``at``."""
        from service.modelwatch._windows import Windows

        h, d, ref = int(at // 3600), int(at // 86_400), self.reference_days
        return Windows.of(
            self._buckets(at, 3600, h - 23, h), self._days(at, d - 6 - ref, d), at, ref
        )
