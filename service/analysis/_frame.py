"""Records as columns: what the model said, whether it erred, its loss and its context.

What counts (documented in the package docstring too):

* a record is *evaluated* when it has a label; its error rate is over evaluated records;
* it is an *error* when the model gave no prediction (a serving failure) or the
  prediction is wrong for its mode:

  - *scored*: every prediction is a number in [0, 1], every label is binary
    (0/1/true/false) and some prediction is fractional. The predicted class is
    ``score >= threshold``, the loss is the log loss and a missing confidence is
    ``max(p, 1 - p)``;
  - *regression* (a ``tolerance`` is set and labels and predictions are numbers): an
    error is ``|prediction - label| > tolerance``; the loss is the absolute error;
  - *label*: predictions are labels compared as normalised strings (``true`` == ``1``
    == ``1.0``) and the loss is the 0-1 loss.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from service.analysis._names import BIT, FLAGS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

OTHER = "(other)"
_EPS = 1e-15
_FLAG_BIT: dict[str, int] = {flag: BIT[flag] for flag in FLAGS}


@dataclass(frozen=True, slots=True)
class Codes:
    """A categorical column: integer codes (-1 where absent) and each code's value."""

    codes: IntArray
    values: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.values)


Mode = Literal["scored", "label", "regression"]


@dataclass(frozen=True, slots=True)
class Frame:
    """The columns every analysis reads; one row per record.

    ``score`` is the probability of the positive class (scored mode; in binary label
    mode derived from the confidence when given), NaN elsewhere. ``target`` and
    ``output`` are the label and the prediction as numbers for the probe: 0/1 for
    binary models, the class index for other label models, the values themselves in
    regression; NaN where absent. ``offline_mismatch`` marks records whose served
    prediction differs from their ``offline_prediction``.
    """

    n: int
    ts: FloatArray
    labelled: BoolArray
    error: BoolArray
    served: BoolArray
    loss: FloatArray
    confidence: FloatArray
    pred_pos: BoolArray
    label_pos: BoolArray
    flags: IntArray
    attributes: dict[str, Codes]
    category: Codes
    mode: Mode
    positive: str | None
    ids: tuple[str, ...] = ()
    score: FloatArray = field(default_factory=lambda: np.zeros(0))
    target: FloatArray = field(default_factory=lambda: np.zeros(0))
    output: FloatArray = field(default_factory=lambda: np.zeros(0))
    classes: tuple[str, ...] = ()
    offline_mismatch: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    tolerance: float | None = None
    threshold: float = 0.5

    @property
    def scored(self) -> bool:
        return self.mode == "scored"

    def has(self, bits: int) -> BoolArray:
        """Rows carrying any of the flag ``bits``."""
        out: BoolArray = (self.flags & bits) != 0
        return out


def normalise(value: Any) -> str | None:
    """A label or prediction as a comparable string: true == 1 == 1.0 -> "1"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scored(predictions: Sequence[Any], labels: Sequence[Any]) -> bool:
    fractional = False
    for p in predictions:
        if p is None:
            continue
        if not _is_number(p) or not 0.0 <= p <= 1.0:
            return False
        fractional = fractional or not float(p).is_integer()
    return fractional and all(normalise(y) in (None, "0", "1") for y in labels)


def _codes(columns: Sequence[str | None], max_values: int) -> Codes:
    counts = Counter(v for v in columns if v is not None)
    kept = [v for v, _ in counts.most_common(max_values)]
    lumped = len(counts) > max_values
    values = tuple(sorted(kept)) + ((OTHER,) if lumped else ())
    index = {v: i for i, v in enumerate(values)}
    other = index.get(OTHER, -1)
    codes = np.fromiter(
        (-1 if v is None else index.get(v, other) for v in columns),
        dtype=np.int64,
        count=len(columns),
    )
    return Codes(codes, values)


def _attribute_columns(
    records: Sequence[Mapping[str, Any]], max_attributes: int, max_values: int
) -> dict[str, Codes]:
    # Count names only: Counter.update(mapping) would add the values as counts.
    names: Counter[str] = Counter(name for r in records for name in (r.get("attributes") or ()))
    out: dict[str, Codes] = {}
    for name in sorted(n for n, _ in names.most_common(max_attributes)):
        column = [_attr(r.get("attributes"), name) for r in records]
        out[name] = _codes(column, max_values)
    return out


def _attr(attributes: Mapping[str, Any] | None, name: str) -> str | None:
    if not attributes:
        return None
    value = attributes.get(name)
    return None if value is None else str(value)


def feature_column(records: Sequence[Mapping[str, Any]], name: str) -> FloatArray:
    """One numeric feature over the records; NaN where absent or null."""
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        features = r.get("features")
        if features:
            value = features.get(name)
            if _is_number(value):
                out[i] = float(value)
    return out


def _flag_bits(flags: Iterable[str] | None) -> int:
    bits = 0
    for f in flags or ():
        bits |= _FLAG_BIT.get(f, 0)
    return bits


def _has_null_feature(features: Mapping[str, Any] | None) -> bool:
    return bool(features) and any(v is None for v in features.values())  # type: ignore[union-attr]


def _positive(pred: Sequence[str | None], labels: Sequence[str | None]) -> str | None:
    seen = {v for v in labels if v is not None} | {v for v in pred if v is not None}
    return "1" if "1" in seen else None


MAX_CLASSES = 20
"""Label models with more classes get no probe (``target`` stays NaN)."""


def _numeric(values: Sequence[Any]) -> bool:
    return all(v is None or _is_number(v) for v in values)


def _mode(raw_pred: Sequence[Any], raw_label: Sequence[Any], tolerance: float | None) -> Mode:
    if tolerance is not None:
        if not (_numeric(raw_pred) and _numeric(raw_label)):
            raise ValueError("a tolerance needs numeric labels and predictions (regression)")
        return "regression"
    return "scored" if _scored(raw_pred, raw_label) else "label"


def _offline_mismatch(
    records: Sequence[Mapping[str, Any]], mode: Mode, tolerance: float | None
) -> BoolArray:
    out = np.zeros(len(records), dtype=bool)
    for i, r in enumerate(records):
        offline = r.get("offline_prediction")
        served = r.get("prediction")
        if offline is None or served is None:
            continue
        if mode != "label" and _is_number(offline) and _is_number(served):
            tol = 1e-6 * max(1.0, abs(float(offline)))
            out[i] = abs(float(offline) - float(served)) > tol
        else:
            out[i] = normalise(offline) != normalise(served)
    return out


def build_frame(
    records: Sequence[Mapping[str, Any]],
    *,
    positive: str | None = None,
    threshold: float = 0.5,
    max_attributes: int = 20,
    max_values: int = 50,
    tolerance: float | None = None,
) -> Frame:
    """Turn record dicts (the stored shape) into columns.

    A missing prediction derives ``serving_error``; a null feature value derives
    ``input_missing``. Novelty flags are added by the caller. ``tolerance`` makes the
    model a regression (raises ValueError when labels or predictions are not numbers).
    """
    n = len(records)
    raw_pred = [r.get("prediction") for r in records]
    raw_label = [r.get("label") for r in records]
    mode = _mode(raw_pred, raw_label, tolerance)
    labels = [normalise(y) for y in raw_label]
    labelled = np.fromiter((y is not None for y in labels), dtype=bool, count=n)
    served = np.fromiter((p is not None for p in raw_pred), dtype=bool, count=n)
    conf = np.fromiter(
        (np.nan if r.get("confidence") is None else float(r["confidence"]) for r in records),
        dtype=np.float64,
        count=n,
    )
    label_one = np.fromiter((y == "1" for y in labels), dtype=bool, count=n)
    score = np.full(n, np.nan)
    target = np.full(n, np.nan)
    output = np.full(n, np.nan)
    classes: tuple[str, ...] = ()
    pos: str | None
    if mode == "regression":
        target = np.array([np.nan if y is None else float(y) for y in raw_label], dtype=float)
        output = np.array([np.nan if p is None else float(p) for p in raw_pred], dtype=float)
        with np.errstate(invalid="ignore"):
            gap = np.abs(output - target)
            error = labelled & (~served | (gap > float(tolerance or 0.0)))
        loss = np.where(labelled & served, gap, np.nan)
        pos = None
        pred_pos = np.zeros(n, dtype=bool)
        label_pos = np.zeros(n, dtype=bool)
    elif mode == "scored":
        score = np.fromiter(
            (np.nan if p is None else float(p) for p in raw_pred), dtype=np.float64, count=n
        )
        with np.errstate(invalid="ignore"):
            pred_one = score >= threshold
        error = labelled & (~served | (pred_one != label_one))
        clipped = np.clip(score, _EPS, 1.0 - _EPS)
        with np.errstate(invalid="ignore"):
            loss = np.where(
                labelled & served,
                -(label_one * np.log(clipped) + (~label_one) * np.log1p(-clipped)),
                np.nan,
            )
        conf = np.where(np.isnan(conf) & served, np.maximum(score, 1.0 - score), conf)
        pos = "1"
        pred_pos = served & pred_one
        label_pos = labelled & label_one
        target = np.where(labelled, label_one.astype(np.float64), np.nan)
        output = score
    else:
        pred = [normalise(p) for p in raw_pred]
        wrong = np.fromiter((p != y for p, y in zip(pred, labels, strict=True)), bool, count=n)
        error = labelled & (~served | wrong)
        loss = np.where(labelled, error.astype(np.float64), np.nan)
        pos = positive if positive is not None else _positive(pred, labels)
        pred_pos = np.fromiter((p == pos for p in pred), dtype=bool, count=n) & served
        label_pos = np.fromiter((y == pos for y in labels), dtype=bool, count=n) & labelled
        seen = sorted({v for v in labels if v is not None} | {v for v in pred if v is not None})
        if 2 <= len(seen) <= MAX_CLASSES:
            classes = tuple(seen)
            index = {v: float(i) for i, v in enumerate(classes)}
            target = np.array([index.get(y, np.nan) if y else np.nan for y in labels])
            output = np.array([index.get(p, np.nan) if p else np.nan for p in pred])
        if len(classes) == 2 and pos in classes:
            # A binary label model with confidences has a score: P(positive).
            score = np.where(served, np.where(pred_pos, conf, 1.0 - conf), np.nan)
            target = np.where(labelled, label_pos.astype(np.float64), np.nan)
    flags = np.fromiter(
        (
            _flag_bits(r.get("flags"))
            | (BIT["input_missing"] if _has_null_feature(r.get("features")) else 0)
            for r in records
        ),
        dtype=np.int64,
        count=n,
    )
    flags |= np.where(served, 0, BIT["serving_error"])
    ts = np.fromiter((_timestamp(r.get("timestamp")) for r in records), dtype=np.float64, count=n)
    category = _codes([_category(r.get("error_category")) for r in records], max_values)
    return Frame(
        n=n,
        ts=ts,
        labelled=labelled,
        error=error,
        served=served,
        loss=loss,
        confidence=conf,
        pred_pos=pred_pos,
        label_pos=label_pos,
        flags=flags,
        attributes=_attribute_columns(records, max_attributes, max_values),
        category=category,
        mode=mode,
        positive=pos,
        ids=tuple(str(r.get("record_id", i)) for i, r in enumerate(records)),
        score=score,
        target=target,
        output=output,
        classes=classes,
        offline_mismatch=_offline_mismatch(records, mode, tolerance),
        tolerance=tolerance,
        threshold=threshold,
    )


def _category(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _timestamp(value: Any) -> float:
    if _is_number(value) and math.isfinite(float(value)):
        return float(value)
    return np.nan
