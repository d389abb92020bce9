"""Breakdowns of performance by segment, time, error category and flag."""

from __future__ import annotations

import datetime as dt
from itertools import combinations
from typing import Any

import numpy as np

from service.analysis._frame import Codes, Frame, IntArray
from service.analysis._groups import clean, group_stats, metric_rows
from service.analysis._intervals import wilson
from service.analysis._names import BIT, FLAGS

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY = 86_400.0


def pair_codes(a: Codes, b: Codes) -> IntArray:
    """Codes of the attribute pair (a, b): a * len(b) + b, -1 where either is absent."""
    both = (a.codes >= 0) & (b.codes >= 0)
    return np.where(both, a.codes * len(b) + b.codes, -1)


def segments(
    frame: Frame,
    *,
    level: float,
    min_support: int,
    max_pair_attributes: int,
    max_pair_rows: int,
) -> list[dict[str, Any]]:
    """Every (bounded) attribute value, then attribute pairs with enough labelled records.

    Single attributes list every value (tiny ones flagged ``low_support``); pairs keep
    the cells with at least ``min_support`` labelled records, the ``max_pair_rows``
    with most errors, over the ``max_pair_attributes`` attributes present most often.
    """
    rows: list[dict[str, Any]] = []
    for name, col in frame.attributes.items():
        stats = group_stats(frame, col.codes, len(col))
        for value, row in zip(
            col.values, metric_rows(stats, level=level, min_support=min_support), strict=True
        ):
            if row["records"]:
                rows.append({"attributes": {name: value}, **row})
    present = sorted(
        frame.attributes, key=lambda k: (-int(np.sum(frame.attributes[k].codes >= 0)), k)
    )[:max_pair_attributes]
    pairs: list[dict[str, Any]] = []
    for a, b in combinations(sorted(present), 2):
        ca, cb = frame.attributes[a], frame.attributes[b]
        stats = group_stats(frame, pair_codes(ca, cb), len(ca) * len(cb))
        keep = np.flatnonzero(stats.labelled >= min_support)
        if keep.size == 0:
            continue
        all_rows = metric_rows(stats, level=level, min_support=min_support)
        for code in keep:
            attrs = {a: ca.values[code // len(cb)], b: cb.values[code % len(cb)]}
            pairs.append({"attributes": attrs, **all_rows[code]})
    pairs.sort(key=lambda r: (-r["errors"], -r["labelled"]))
    return rows + pairs[:max_pair_rows]


def time_rows(
    frame: Frame, *, level: float, min_support: int, max_days: int
) -> list[dict[str, Any]]:
    """By hour of day, day of week and calendar day (UTC; the last ``max_days`` days)."""
    rows: list[dict[str, Any]] = []
    known = ~np.isnan(frame.ts)
    ts = np.where(known, frame.ts, 0.0)
    day = np.floor(ts / _DAY).astype(np.int64)
    hour = np.where(known, (np.floor(ts / 3600.0).astype(np.int64)) % 24, -1)
    weekday = np.where(known, (day + 3) % 7, -1)  # 1970-01-01 was a Thursday
    for dimension, codes, labels in (
        ("hour", hour, list(range(24))),
        ("weekday", weekday, list(WEEKDAYS)),
    ):
        stats = group_stats(frame, codes, len(labels))
        for value, row in zip(
            labels, metric_rows(stats, level=level, min_support=min_support), strict=True
        ):
            if row["records"]:
                rows.append({"dimension": dimension, "value": value, **row})
    if known.any():
        last = int(day[known].max())
        first = max(int(day[known].min()), last - max_days + 1)
        codes = np.where(known & (day >= first), day - first, -1)
        stats = group_stats(frame, codes, last - first + 1)
        for offset, row in enumerate(metric_rows(stats, level=level, min_support=min_support)):
            if row["records"]:
                date = dt.date(1970, 1, 1) + dt.timedelta(days=first + offset)
                rows.append({"dimension": "day", "value": date.isoformat(), **row})
    return rows


def _share_rows(
    frame: Frame, masks: list[tuple[str, Any]], key: str, level: float
) -> list[dict[str, Any]]:
    total_errors = int(frame.error.sum())
    rows: list[dict[str, Any]] = []
    for value, mask in masks:
        labelled = int((mask & frame.labelled).sum())
        errors = int((mask & frame.error).sum())
        rate, lo, hi = wilson(errors, labelled, level)
        rows.append(
            {
                key: value,
                "records": int(mask.sum()),
                "labelled": labelled,
                "errors": errors,
                "error_rate": {
                    "value": clean(float(rate)),
                    "ci": [clean(float(lo)), clean(float(hi))],
                },
                "error_share": clean(errors / total_errors) if total_errors else None,
            }
        )
    return rows


def categories(frame: Frame, *, level: float) -> list[dict[str, Any]]:
    """By the client's ``error_category``: records, errors, error rate, share of all errors."""
    col = frame.category
    masks = [(value, col.codes == i) for i, value in enumerate(col.values)]
    rows = _share_rows(frame, masks, "category", level)
    return sorted(rows, key=lambda r: (-r["errors"], r["category"]))


def flag_rows(frame: Frame, *, level: float) -> list[dict[str, Any]]:
    """By flag (set by the client or derived), plus ``none`` for records without flags."""
    masks: list[tuple[str, Any]] = [(flag, frame.has(BIT[flag])) for flag in FLAGS]
    masks.append(("none", frame.flags == 0))
    return _share_rows(frame, masks, "flag", level)
