"""What a record adds to the buckets, against independent computations (scikit-learn,
numpy), and the vectorised simulator path held equal to it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_absolute_error

from scripts.model_line import Line, Sums, arrays
from service.modelwatch._contrib import (
    CAL_BINS,
    Scoring,
    add_into,
    bin_counts,
    bin_position,
    bin_range,
    label_stats,
    value_bin,
)
from service.modelwatch._metrics import METRICS
from service.modelwatch._windows import Bucket, total

BINARY = Scoring()


def _sum(
    records: Sequence[Mapping[str, object]], labels: Sequence[object], scoring: Scoring
) -> dict[str, float]:
    out: dict[str, float] = {}
    for record, label in zip(records, labels, strict=True):
        add_into(out, label_stats(record, label, scoring))
    return out


def test_scored_binary_sums_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.99, 500)
    y = (rng.random(500) < p).astype(int)
    records = [{"prediction": float(x)} for x in p]
    s = _sum(records, list(map(int, y)), BINARY)
    pred = (p >= 0.5).astype(int)
    assert s["l"] == 500
    assert s["k"] == np.sum(pred == y)
    assert (s["tp"], s["fp"], s["fn"]) == (
        np.sum((pred == 1) & (y == 1)),
        np.sum((pred == 1) & (y == 0)),
        np.sum((pred == 0) & (y == 1)),
    )
    assert METRICS["log_loss"].value(s) == pytest.approx(log_loss(y, p), rel=1e-12)
    assert METRICS["mae"].value(s) == pytest.approx(mean_absolute_error(y, p), rel=1e-12)
    # Top-label ECE, computed independently with numpy.
    top = np.maximum(p, 1 - p)
    bins = np.minimum((top * CAL_BINS).astype(int), CAL_BINS - 1)
    ece = (
        sum(abs(top[bins == b].sum() - (pred == y)[bins == b].sum()) for b in range(CAL_BINS)) / 500
    )
    assert METRICS["ece"].value(s) == pytest.approx(ece, rel=1e-12)


def test_label_model_with_confidence_and_a_positive_class() -> None:
    scoring = Scoring(positive="fraud")
    records: list[dict[str, object]] = [
        {"prediction": "fraud", "confidence": 0.9},  # right, positive
        {"prediction": "fraud", "confidence": 0.7},  # wrong: a false positive
        {"prediction": "legit", "confidence": 0.8},  # wrong: a missed fraud
        {"prediction": None},  # not served: wrong, no probability
    ]
    s = _sum(records, ["fraud", "legit", "fraud", "legit"], scoring)
    assert (s["l"], s.get("k", 0), s["tp"], s["fp"], s["fn"]) == (4, 1, 1, 1, 1)
    expected = -(math.log(0.9) + math.log(0.3) + math.log(0.2)) / 3
    assert METRICS["log_loss"].value(s) == pytest.approx(expected)
    assert s["ln"] == 3


def test_regression_with_a_tolerance() -> None:
    scoring = Scoring(tolerance=2.0)
    records: list[dict[str, object]] = [
        {"prediction": 10.0},
        {"prediction": 13.5},
        {"prediction": 7},
    ]
    s = _sum(records, [11.0, 10.0, 7.5], scoring)
    assert s["k"] == 2  # |1| and |0.5| within 2; |3.5| not
    assert METRICS["mae"].value(s) == pytest.approx(
        mean_absolute_error([11, 10, 7.5], [10, 13.5, 7])
    )
    assert "tp" not in s and "ln" not in s


def test_a_relabel_moves_the_sums_exactly() -> None:
    record = {"prediction": 0.8, "confidence": None}
    first = label_stats(record, 0, BINARY)
    second = label_stats(record, 1, BINARY)
    net = dict(first)
    add_into(net, second)
    add_into(net, first, -1.0)
    kept = {k: v for k, v in net.items() if abs(v) > 1e-12}
    assert kept == pytest.approx(second, rel=1e-12)
    assert label_stats(record, None, BINARY) == {}


def test_bins_are_consistent_scalar_and_vectorised() -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate(
        [
            rng.lognormal(3, 2, 2000),
            -rng.lognormal(0, 3, 500),
            rng.integers(-12, 70, 500).astype(float),
            rng.uniform(0, 1, 500),
            [0.0, 1e-12, -1e-12, 64.0, 65.0, -10.0, -11.0, np.nan, np.nan],
        ]
    )
    scalar: dict[str, float] = {}
    for x in values:
        key = "na" if np.isnan(x) else value_bin(float(x))
        scalar[key] = scalar.get(key, 0.0) + 1
    assert bin_counts(values) == scalar
    for x in values[~np.isnan(values)]:
        low, high = bin_range(value_bin(float(x)))
        assert low <= x <= high or abs(x) < 1e-9
    keys = sorted(scalar, key=bin_position)
    assert keys[-1] == "na"


def test_the_simulator_sums_equal_the_per_record_path() -> None:
    line = Line(segments=3, per_day=40, days=3, seed=11, label_delay_h=10)
    end = 1_717_200_000.0
    t = arrays(line, end)
    at = end - 5 * 3600
    windows = Sums(t, 3, reference_days=1).windows(at)
    buckets: dict[int, dict[str, float]] = {}
    for i in range(t.ts.size):
        if t.ts[i] > at:
            continue
        day = int(t.ts[i] // 86_400)
        label = int(t.y[i]) if t.label_at[i] <= at else None
        sums = {"n": 1.0, **label_stats({"prediction": float(t.p[i])}, label, BINARY)}
        add_into(buckets.setdefault(day, {}), sums)
    fast = total(windows.daily.values()).cell("")
    slow = total(Bucket(cells={"": b}) for b in buckets.values()).cell("")
    assert set(fast) >= {k for k, v in slow.items() if v}
    for key, value in slow.items():
        assert fast[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
