"""The performance report of one production model: every breakdown, slices and levers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from service.analysis._breakdowns import categories, flag_rows, segments, time_rows
from service.analysis._calibration import calibration
from service.analysis._frame import build_frame
from service.analysis._groups import metric_rows, total_stats
from service.analysis._levers import lever_rows, record_evidence
from service.analysis._names import BIT
from service.analysis._novelty import named
from service.analysis._reference import Reference, feature_matrix, feature_names
from service.analysis._slices import cover, discover, pareto
from service.analysis.taxonomy import assign


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
    tolerance: float | None = None
    """Regression models: an error is ``|prediction - label| > tolerance``."""
    max_attributes: int = 20
    max_values: int = 50
    max_pair_attributes: int = 10
    max_pair_rows: int = 500
    max_days: int = 90
    folds: int = 5
    """Cross-fitting folds of the recalibration and the probe."""
    probe_iter: int = 100
    """Boosting iterations of the probe."""
    probe_margin: float = 0.1
    """The probe must give the true label at least 0.5 + this to claim an error."""
    seed: int = 0
    value_per_error: float | None = None
    """The line's ``impact.value_per_unit``, read as the value of one error fixed."""
    currency: str | None = None
    cover_share: float = 0.8


@dataclass(frozen=True, slots=True)
class Analysis:
    """The report and one row per labelled error (``record_id``, ``lever``, evidence)."""

    report: dict[str, Any]
    errors: list[dict[str, Any]]


def analyze(
    records: Sequence[Mapping[str, Any]],
    params: AnalysisParams | None = None,
    reference: Reference | None = None,
) -> dict[str, Any]:
    """The analysis report of prediction records (see :func:`run_analysis`)."""
    return run_analysis(records, params, reference).report


def run_analysis(
    records: Sequence[Mapping[str, Any]],
    params: AnalysisParams | None = None,
    reference: Reference | None = None,
) -> Analysis:
    """Analyse prediction records (dicts in the stored shape) into the report.

    The report's keys: ``overall``, ``segments``, ``time``, ``calibration``,
    ``categories``, ``flags``, ``slices``, ``slice_search``, ``pareto``, ``cover``,
    ``levers``, ``recommendation``, ``taxonomy``, ``reference`` and ``params``. Pure:
    numbers in, dict out. Raises ValueError when a tolerance meets non-numeric values.
    """
    p = params or AnalysisParams()
    frame = build_frame(
        records,
        positive=p.positive,
        threshold=p.threshold,
        max_attributes=p.max_attributes,
        max_values=p.max_values,
        tolerance=p.tolerance,
    )
    columns = reference.columns if reference is not None else feature_names(records)
    matrix = feature_matrix(records, columns)
    # One OpenMP thread: on a busy machine the boosting's threads spin-wait against other
    # processes (a 3k-record probe took 90 s with two threads under load, 1 s with one),
    # and an analysis should not take every core from the requests beside it.
    with threadpool_limits(limits=1):
        a = assign(
            frame,
            matrix,
            columns,
            reference,
            alpha=p.alpha,
            level=p.level,
            folds=p.folds,
            seed=p.seed,
            probe_iter=p.probe_iter,
            probe_margin=p.probe_margin,
        )
    if a.novelty is not None:
        frame = dataclasses.replace(
            frame, flags=frame.flags | np.where(a.novelty.novel, BIT["out_of_distribution"], 0)
        )
    level = p.level
    overall = metric_rows(total_stats(frame), level=level, min_support=p.min_support)[0]
    overall.update(
        {
            "mode": frame.mode,
            "positive": frame.positive,
            "unlabelled": int(frame.n - frame.labelled.sum()),
            "loss": _loss_name(frame.mode),
        }
    )
    if frame.mode == "regression":
        overall["tolerance"] = frame.tolerance
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
    levers, recommendation = lever_rows(
        frame, a, level=level, value_per_error=p.value_per_error, currency=p.currency
    )
    report = {
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
        "cover": cover(frame, found, share=p.cover_share),
        "levers": levers,
        "recommendation": recommendation,
        "taxonomy": _taxonomy(a),
        "reference": _reference(reference, a),
        "params": dataclasses.asdict(p),
    }
    return Analysis(report, record_evidence(frame, a))


def _loss_name(mode: str) -> str:
    return {"scored": "log loss", "regression": "absolute error"}.get(mode, "0-1 loss")


def _taxonomy(a: Any) -> dict[str, Any]:
    nov = a.novelty
    out: dict[str, Any] = {
        "order": ["serving", "data", "distribution_shift", "threshold", "capacity", "feature_gap"],
        "features": len(a.columns),
        "novelty": None,
        "recalibration": None if a.recalibration is None else a.recalibration.method,
        "probe": None if a.probe is None else a.probe.method,
    }
    if nov is not None:
        out["novelty"] = {
            "method": f"mean distance to the {nov.k} nearest reference rows, standardized",
            "cutoff": round(nov.cutoff, 4),
            "quantile": nov.quantile,
            "reference_rows_searched": nov.searched,
            "reference_rows_held_out": nov.held_out,
            "novel_records": int(nov.novel.sum()),
        }
    return out


def _reference(reference: Reference | None, a: Any) -> dict[str, Any]:
    if reference is None:
        return {
            "source": None,
            "note": "no reference yet: novelty (and so distribution shift) cannot be judged",
        }
    out = reference.to_dict()
    nov = a.novelty
    if nov is not None:
        counts: dict[str, int] = {}
        for row in np.flatnonzero(nov.novel):
            for name in named(nov.features[row], a.columns):
                counts[name] = counts.get(name, 0) + 1
        out["novel_by_feature"] = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:10])
    return out
