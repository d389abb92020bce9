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

__all__ = ["Line", "Traffic", "arrays", "records"]

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
