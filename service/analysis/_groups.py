"""Performance metrics of groups of records, with intervals and counts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.analysis._frame import BoolArray, FloatArray, Frame, IntArray
from service.analysis._intervals import mean_t, wilson


def clean(x: float) -> float | None:
    """A float for JSON: NaN and infinities become None."""
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Counts per group (index = group code)."""

    records: IntArray
    labelled: IntArray
    errors: IntArray
    tp: IntArray
    fp: IntArray
    fn: IntArray
    loss_n: IntArray
    loss_sum: FloatArray
    loss_sq: FloatArray

    def __len__(self) -> int:
        return int(self.records.shape[0])


def group_stats(frame: Frame, codes: IntArray, groups: int) -> GroupStats:
    """Sum the counts of every group ``0..groups-1``; rows with code -1 are left out."""
    present = codes >= 0

    def count(mask: BoolArray) -> IntArray:
        return np.bincount(codes[present & mask], minlength=groups).astype(np.int64)

    has_loss = ~np.isnan(frame.loss)
    loss = np.where(has_loss, frame.loss, 0.0)
    keep = present & has_loss
    ev = frame.labelled
    return GroupStats(
        records=count(np.ones(frame.n, dtype=bool)),
        labelled=count(ev),
        errors=count(frame.error),
        tp=count(ev & frame.pred_pos & frame.label_pos),
        fp=count(ev & frame.pred_pos & ~frame.label_pos),
        fn=count(ev & ~frame.pred_pos & frame.label_pos),
        loss_n=count(has_loss),
        loss_sum=np.bincount(codes[keep], weights=loss[keep], minlength=groups).astype(np.float64),
        loss_sq=np.bincount(codes[keep], weights=loss[keep] ** 2, minlength=groups).astype(
            np.float64
        ),
    )


def total_stats(frame: Frame) -> GroupStats:
    """All records as one group."""
    return group_stats(frame, np.zeros(frame.n, dtype=np.int64), 1)


def _rate(value: float, lower: float, upper: float) -> dict[str, Any]:
    return {"value": clean(value), "ci": [clean(lower), clean(upper)]}


def metric_rows(
    g: GroupStats, *, level: float, min_support: int, with_pr: bool = True
) -> list[dict[str, Any]]:
    """One dict per group: counts, error rate, accuracy, precision, recall, mean loss.

    Rates carry Wilson intervals, the mean loss a t interval. ``low_support`` is set
    when fewer than ``min_support`` records are labelled: read such rows as anecdotes.
    """
    err, err_lo, err_hi = wilson(g.errors, g.labelled, level)
    prec, prec_lo, prec_hi = wilson(g.tp, g.tp + g.fp, level)
    rec, rec_lo, rec_hi = wilson(g.tp, g.tp + g.fn, level)
    loss, loss_lo, loss_hi = mean_t(g.loss_n, g.loss_sum, g.loss_sq, level)
    rows: list[dict[str, Any]] = []
    for i in range(len(g)):
        row: dict[str, Any] = {
            "records": int(g.records[i]),
            "labelled": int(g.labelled[i]),
            "errors": int(g.errors[i]),
            "error_rate": _rate(err[i], err_lo[i], err_hi[i]),
            "accuracy": _rate(1.0 - err[i], 1.0 - err_hi[i], 1.0 - err_lo[i]),
        }
        if with_pr:
            row["precision"] = {
                **_rate(prec[i], prec_lo[i], prec_hi[i]),
                "n": int(g.tp[i] + g.fp[i]),
            }
            row["recall"] = {**_rate(rec[i], rec_lo[i], rec_hi[i]), "n": int(g.tp[i] + g.fn[i])}
        row["mean_loss"] = {**_rate(loss[i], loss_lo[i], loss_hi[i]), "n": int(g.loss_n[i])}
        row["low_support"] = bool(g.labelled[i] < min_support)
        rows.append(row)
    return rows
