"""The performance report of one production model: every breakdown, slices and levers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from service.analysis._breakdowns import categories, flag_rows, segments, time_rows
from service.analysis._calibration import calibration
from service.analysis._frame import build_frame
from service.analysis._groups import metric_rows, total_stats
from service.analysis._levers import lever_report
from service.analysis._names import BIT
from service.analysis._reference import Reference, out_of_range
from service.analysis._slices import discover, pareto


@dataclass(frozen=True, slots=True)
class AnalysisParams:
    """Knobs of :func:`analyze`; the defaults suit a model with thousands of labels."""

    min_support: int = 30
    """Rows with fewer labelled records are flagged ``low_support``; slices need as many."""
    slice_min_share: float = 0.01
    """A slice also needs this share of all labelled records."""
    max_order: int = 3
    alpha: float = 0.05
    correction: Literal["holm", "bh", "none"] = "holm"
    top_k: int = 10
    bins: int = 10
    level: float = 0.95
    positive: str | None = None
    """The positive class for precision/recall; default "1" (true) when seen."""
    threshold: float = 0.5
    high_confidence: float = 0.8
    max_attributes: int = 20
    max_values: int = 50
    max_pair_attributes: int = 10
    max_pair_rows: int = 500
    max_days: int = 90


def analyze(
    records: Sequence[Mapping[str, Any]],
    params: AnalysisParams | None = None,
    reference: Reference | None = None,
) -> dict[str, Any]:
    """Analyse prediction records (dicts in the stored shape) into the report.

    The report's keys: ``overall``, ``segments``, ``time``, ``calibration``,
    ``categories``, ``flags``, ``slices``, ``slice_search``, ``pareto``, ``levers``,
    ``recommendation``, ``reference`` and ``params``. Pure: numbers in, dict out.
    """
    p = params or AnalysisParams()
    frame = build_frame(
        records,
        positive=p.positive,
        threshold=p.threshold,
        max_attributes=p.max_attributes,
        max_values=p.max_values,
        features=reference.features if reference else (),
    )
    ood_features: dict[str, Any] = {}
    if reference is not None and reference.features:
        flagged, _ = out_of_range(frame.features, reference, frame.n)
        frame = dataclasses.replace(
            frame, flags=frame.flags | np.where(flagged, BIT["out_of_distribution"], 0)
        )
        for name, rng in reference.features.items():
            column = frame.features[name]
            with np.errstate(invalid="ignore"):
                ood_features[name] = (column < rng.low) | (column > rng.high)
    level = p.level
    overall = metric_rows(total_stats(frame), level=level, min_support=p.min_support)[0]
    overall.update(
        {
            "mode": "scored" if frame.scored else "label",
            "positive": frame.positive,
            "unlabelled": int(frame.n - frame.labelled.sum()),
        }
    )
    cal = calibration(frame, bins=p.bins, level=level)
    found = discover(
        frame,
        min_support=p.min_support,
        min_share=p.slice_min_share,
        max_order=p.max_order,
        alpha=p.alpha,
        correction=p.correction,
        top_k=p.top_k,
        level=level,
    )
    in_slice = np.zeros(frame.n, dtype=bool)
    for mask in found.masks:
        in_slice |= mask
    levers, recommendation = lever_report(
        frame,
        in_slice=in_slice,
        slices=found.slices,
        masks=found.masks,
        ood_features=ood_features,
        calibration=cal,
        high_confidence=p.high_confidence,
        level=level,
    )
    return {
        "overall": overall,
        "segments": segments(
            frame,
            level=level,
            min_support=p.min_support,
            max_pair_attributes=p.max_pair_attributes,
            max_pair_rows=p.max_pair_rows,
        ),
        "time": time_rows(frame, level=level, min_support=p.min_support, max_days=p.max_days),
        "calibration": cal,
        "categories": categories(frame, level=level),
        "flags": flag_rows(frame, level=level),
        "slices": found.slices,
        "slice_search": {
            "examined": found.examined,
            "significant": found.significant,
            "min_records": found.support,
            "max_order": p.max_order,
            "alpha": p.alpha,
            "correction": p.correction,
            "test": "one-sided two-proportion z test of the slice against the rest",
        },
        "pareto": pareto(frame, found.slices, found.masks),
        "levers": levers,
        "recommendation": recommendation,
        "reference": None if reference is None else reference.to_dict(),
        "params": dataclasses.asdict(p),
    }
