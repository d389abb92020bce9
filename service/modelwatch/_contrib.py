"""What one prediction record adds to the model monitor's sufficient statistics.

A time bucket (an hour or a day of prediction time) is a Redis hash of sums. Its fields
are ``<stat>\\x1f<cell>``: the cell is ``""`` (every record), ``a\\x1f<attribute>`` (the
records that have the attribute) or ``v\\x1f<attribute>\\x1f<value>`` (the records with
that value, for the values the bucket keeps a row for). Per cell:

* ``n`` records; ``l`` labelled records; ``k`` correct ones;
* ``tp``, ``fp``, ``fn`` against the positive class (binary models);
* ``ln``, ``ls``, ``lq`` records with a probability for their label, the sum and the sum of
  squares of their log loss;
* ``en``, ``es``, ``eq`` records with a numeric prediction and label, the sum and the sum
  of squares of their absolute error;
* ``c<b>n``, ``c<b>s``, ``c<b>k`` per confidence bin ``b`` (ten equal-width bins): records,
  their confidence sum and how many were correct (for the ECE).

Whole-population fields describe the inputs: ``f\\x1f<feature>\\x1f<bin>`` counts a
feature's values by bin (``na`` for null; a record without the feature counts nowhere),
``s\\x1f<bin>`` the prediction scores (the prediction if it is a number, else the
confidence) and ``p\\x1f<class>`` the predicted classes. Fields starting with ``#`` are
not sums (see ``_buckets``).

What counts as correct follows the analysis (``service.analysis``): a fractional
prediction in [0, 1] with a 0/1 label is a score (class 1 when >= 0.5, log loss of the
score); a model with a ``tolerance`` is a regression (correct when |error| <= tolerance);
otherwise predictions are labels compared as normalised strings, with the log loss of
the confidence (``confidence`` when right, ``1 - confidence`` when wrong: exact for binary
models, which are the only ones the report gives a log loss for).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import numpy as np
import numpy.typing as npt

from service.analysis._frame import normalise

__all__ = [
    "CAL_BINS",
    "SEP",
    "Scoring",
    "add_into",
    "bin_counts",
    "bin_position",
    "bin_range",
    "cell_all",
    "cell_any",
    "cell_value",
    "clean_text",
    "input_stats",
    "label_stats",
    "value_bin",
]

SEP: Final = "\x1f"
CAL_BINS: Final = 10
_EPS: Final = 1e-15
_GAMMA_LOG: Final = math.log(1.2)
_INT_LOW, _INT_HIGH = -10, 64
_UNIT_BINS: Final = 50
_TINY: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Scoring:
    """How a model's predictions are judged (its settings when a record is applied)."""

    positive: str = "1"
    tolerance: float | None = None


def clean_text(value: str) -> str:
    """A name or value usable inside a field (the separator replaced)."""
    return value.replace(SEP, " ")


def cell_all() -> str:
    return ""


def cell_any(attribute: str) -> str:
    return f"a{SEP}{attribute}"


def cell_value(attribute: str, value: str) -> str:
    return f"v{SEP}{attribute}{SEP}{value}"


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _add(out: dict[str, float], name: str, amount: float = 1.0) -> None:
    out[name] = out.get(name, 0.0) + amount


def add_into(total: dict[str, float], part: Mapping[str, float], sign: float = 1.0) -> None:
    """``total += sign * part``, field by field."""
    for name, amount in part.items():
        total[name] = total.get(name, 0.0) + sign * amount


def label_stats(record: Mapping[str, Any], label: Any, scoring: Scoring) -> dict[str, float]:
    """The label-dependent sums of one record (nothing without a label)."""
    if label is None:
        return {}
    out: dict[str, float] = {"l": 1.0}
    pred = record.get("prediction")
    conf = record.get("confidence")
    confidence = float(conf) if _number(conf) else None
    y = normalise(label)
    if _number(pred) and _number(label):
        err = abs(float(pred) - float(label))
        _add(out, "en")
        _add(out, "es", err)
        _add(out, "eq", err * err)
        if scoring.tolerance is not None:
            if err <= scoring.tolerance:
                _add(out, "k")
            return out
    p_true: float | None = None
    top = confidence
    if _number(pred) and 0.0 < float(pred) < 1.0 and y in ("0", "1"):
        p = float(pred)
        is_pos, pred_pos = y == "1", p >= 0.5
        correct = pred_pos == is_pos
        p_true = p if is_pos else 1.0 - p
        if top is None:
            top = max(p, 1.0 - p)
    else:
        served = normalise(pred)
        correct = served is not None and served == y
        is_pos, pred_pos = y == scoring.positive, served == scoring.positive
        if confidence is not None:
            p_true = confidence if correct else 1.0 - confidence
    if correct:
        _add(out, "k")
    if is_pos and pred_pos:
        _add(out, "tp")
    elif pred_pos:
        _add(out, "fp")
    elif is_pos:
        _add(out, "fn")
    if p_true is not None:
        loss = -math.log(min(max(p_true, _EPS), 1.0))
        _add(out, "ln")
        _add(out, "ls", loss)
        _add(out, "lq", loss * loss)
    if top is not None:
        b = min(int(top * CAL_BINS), CAL_BINS - 1)
        _add(out, f"c{b}n")
        _add(out, f"c{b}s", top)
        if correct:
            _add(out, f"c{b}k")
    return out


def value_bin(x: float) -> str:
    """The sketch bin of a number: small integers exactly (``i3``: codes and counts),
    fractions in (0, 1) in 50 equal bins (``u12``), the rest in bins of 20 % relative
    width (``p7`` positive, ``n7`` negative), ``z`` for values within 1e-9 of zero."""
    if x == int(x) and _INT_LOW <= x <= _INT_HIGH:
        return f"i{int(x)}"
    if 0.0 < x < 1.0:
        return f"u{min(int(x * _UNIT_BINS), _UNIT_BINS - 1)}"
    if abs(x) < _TINY:
        return "z"
    k = math.ceil(math.log(abs(x)) / _GAMMA_LOG)
    return f"{'p' if x > 0 else 'n'}{k}"


def bin_position(key: str) -> float:
    """A number inside the bin, to order bins along the axis (``na`` last)."""
    if key == "na":
        return math.inf
    head, rest = key[:1], key[1:]
    if head == "i":
        return float(int(rest))
    if head == "u":
        return (int(rest) + 0.5) / _UNIT_BINS
    if head == "z":
        return 0.0
    if head in ("p", "n"):
        middle = math.exp((int(rest) - 0.5) * _GAMMA_LOG)
        return middle if head == "p" else -middle
    return math.inf


def bin_range(key: str) -> tuple[float, float]:
    """The values a sketch bin holds, as (low, high); (nan, nan) for ``na``."""
    if key == "na":
        return math.nan, math.nan
    head, rest = key[:1], key[1:]
    if head == "i":
        return float(int(rest)), float(int(rest))
    if head == "u":
        return int(rest) / _UNIT_BINS, (int(rest) + 1) / _UNIT_BINS
    if head in ("p", "n"):
        low, high = math.exp((int(rest) - 1) * _GAMMA_LOG), math.exp(int(rest) * _GAMMA_LOG)
        return (low, high) if head == "p" else (-high, -low)
    return 0.0, 0.0


def bin_counts(values: npt.NDArray[np.float64]) -> dict[str, float]:
    """``value_bin`` counts of an array (NaN counts as ``na``), vectorised for reference
    sets of millions of values."""
    out: dict[str, float] = {}
    nan = np.isnan(values)
    if nan.any():
        out["na"] = float(nan.sum())
    x = values[~nan]
    integral = (x == np.round(x)) & (x >= _INT_LOW) & (x <= _INT_HIGH)
    unit = ~integral & (x > 0) & (x < 1)
    tiny = ~integral & ~unit & (np.abs(x) < _TINY)
    rest = ~(integral | unit | tiny)
    for v, c in zip(*np.unique(x[integral].astype(np.int64), return_counts=True), strict=True):
        out[f"i{int(v)}"] = float(c)
    idx = np.minimum((x[unit] * _UNIT_BINS).astype(np.int64), _UNIT_BINS - 1)
    for v, c in zip(*np.unique(idx, return_counts=True), strict=True):
        out[f"u{int(v)}"] = float(c)
    if tiny.any():
        out["z"] = float(tiny.sum())
    big = x[rest]
    with np.errstate(divide="ignore"):
        ks = np.ceil(np.log(np.abs(big)) / _GAMMA_LOG).astype(np.int64)
    signs = np.where(big > 0, 1, -1)
    pairs, counts = np.unique(np.stack([signs, ks]), axis=1, return_counts=True)
    for (sign, k), c in zip(pairs.T, counts, strict=True):
        out[f"{'p' if sign > 0 else 'n'}{int(k)}"] = float(c)
    return out


def input_stats(
    record: Mapping[str, Any], features: Collection[str], classes: Collection[str]
) -> dict[str, float]:
    """The whole-population input sums of one record: its ``features`` (the tracked ones)
    by bin, its score by bin and its predicted class (one of ``classes``, else ``other``)."""
    out: dict[str, float] = {}
    given = record.get("features")
    if isinstance(given, Mapping):
        for name in features:
            if name in given:
                value = given[name]
                key = value_bin(float(value)) if _number(value) else "na"
                _add(out, f"f{SEP}{name}{SEP}{key}")
    pred = record.get("prediction")
    conf = record.get("confidence")
    if _number(pred):
        _add(out, f"s{SEP}{value_bin(float(pred))}")
    elif _number(conf):
        _add(out, f"s{SEP}{value_bin(float(conf))}")
    if pred is not None and not _number(pred):
        served = normalise(pred) or ""
        _add(out, f"p{SEP}{clean_text(served) if served in classes else 'other'}")
    return out
