"""Backtest: the experiment's analysis and decision rule on historical paired records.

For systems with too little traffic to experiment live: both models' predictions on
the same past inputs, with the truth, judged by the spec's metrics. Differences to
a live experiment, all towards a stricter bar:

* **paired analysis**: each record is a unit seen by both models, so effects are
  estimated from per-record differences (:mod:`service.analysis._paired`), not as
  two independent samples, whose variance would ignore the positive correlation
  between the arms and throw away most of the power on low-volume data;
* **fixed design at alpha / 2**: history is read once, so no sequential penalty is
  needed, but the significance level is half the spec's (or ``strict_alpha``);
* **non-inferiority in every segment**: for every segment value with at least
  ``min_segment_records`` records, every guardrail *and* the primary metric must be
  shown non-inferior (relative CI above -margin; the primary's margin is its
  ``margin``, else its ``mde``). Intervals use alpha/2 split (Bonferroni) over all
  the guardrail and segment cells. Smaller segments are listed, not judged;
* the rest is the live rule (:func:`service.stats.decide`): a breached guardrail
  means ``rollback``, a win ships, anything else ``stop`` (history will not grow),
  or ``continue`` when the history spans fewer than the spec's ``min_days``.

There is no sample-ratio check: both arms saw every record by construction.

Per-record values the metrics may use, per variant: ``records`` (1), ``served``,
``correct``, ``error``, ``true_positive``, ``false_positive``, ``false_negative``,
``true_negative``, ``flagged`` (predicted positive), ``actual_positive``,
``log_loss`` (scored predictions only), plus any ``values`` the records carry
(missing ones count as 0, as for a unit without events).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from service import format as fmt
from service.analysis._frame import FloatArray, Frame, build_frame
from service.analysis._groups import clean, metric_rows, total_stats
from service.analysis._paired import paired_comparison
from service.stats import (
    Comparison,
    Correction,
    Direction,
    GuardrailResult,
    MetricStatus,
    adjust_p_values,
    classify_guardrail,
    decide,
    evaluate_design,
    guardrail_alpha,
    metric_status,
)

__all__ = ["DERIVED_VALUES", "BacktestPlan", "PlanMetric", "run_backtest"]

DERIVED_VALUES = (
    "records",
    "served",
    "correct",
    "error",
    "true_positive",
    "false_positive",
    "false_negative",
    "true_negative",
    "flagged",
    "actual_positive",
    "log_loss",
)
_DAY = 86_400.0
_LIVE_ONLY = ("all guardrails non-inferior", "SRM clean")


@dataclass(frozen=True, slots=True)
class PlanMetric:
    name: str
    kind: Literal["mean", "proportion", "ratio"]
    role: Literal["primary", "guardrail", "secondary"]
    direction: Direction
    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    mde: float | None = None
    margin: float | None = None

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.value, self.numerator, self.denominator) if n)


@dataclass(frozen=True, slots=True)
class BacktestPlan:
    """What the spec says, reduced to what a backtest needs."""

    experiment: str
    baseline: str
    candidate: str
    metrics: tuple[PlanMetric, ...]
    alpha: float = 0.05
    segments: tuple[str, ...] = ()
    min_days: float = 0.0
    correction: Correction = "holm"
    strict_alpha: float | None = None
    min_segment_records: int = 50
    max_segment_values: int = 20
    max_segment_attributes: int = 10
    positive: str | None = None
    threshold: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bar_alpha(self) -> float:
        return self.strict_alpha if self.strict_alpha is not None else self.alpha / 2.0


class _Arm:
    """One variant's predictions on the records, with its per-record values."""

    def __init__(self, records: Sequence[Mapping[str, Any]], variant: str, plan: BacktestPlan):
        rows = []
        self.custom: list[Mapping[str, Any]] = []
        for r in records:
            arm = (r.get("variants") or {}).get(variant) or {}
            rows.append(
                {
                    "prediction": arm.get("prediction"),
                    "label": r.get("label"),
                    "confidence": arm.get("confidence"),
                }
            )
            self.custom.append(arm.get("values") or {})
        self.frame: Frame = build_frame(
            rows, positive=plan.positive, threshold=plan.threshold, max_attributes=0
        )

    def values(self, name: str) -> FloatArray:
        f = self.frame
        derived: dict[str, Any] = {
            "records": np.ones(f.n),
            "served": f.served,
            "correct": f.labelled & ~f.error,
            "error": f.error,
            "true_positive": f.pred_pos & f.label_pos,
            "false_positive": f.pred_pos & ~f.label_pos & f.labelled,
            "false_negative": ~f.pred_pos & f.label_pos,
            "true_negative": ~f.pred_pos & ~f.label_pos & f.labelled,
            "flagged": f.pred_pos,
            "actual_positive": f.label_pos,
        }
        if name in derived:
            return np.asarray(derived[name], dtype=np.float64)
        if name == "log_loss":
            return np.nan_to_num(f.loss, nan=0.0) if f.scored else np.full(f.n, np.nan)
        return np.array([float(v.get(name, 0.0)) for v in self.custom], dtype=np.float64)


def _sums(arm: _Arm, m: PlanMetric) -> tuple[FloatArray, FloatArray]:
    if m.kind == "ratio":
        assert m.numerator is not None and m.denominator is not None
        return arm.values(m.numerator), arm.values(m.denominator)
    assert m.value is not None
    x = arm.values(m.value)
    if m.kind == "proportion":
        x = (x > 0).astype(np.float64)
    return x, np.ones_like(x)


def _effects(c: Comparison) -> dict[str, Any]:
    return {
        "baseline": {"units": c.control_n, "mean": clean(c.control_mean)},
        "treatment": {"units": c.treatment_n, "mean": clean(c.treatment_mean)},
        "absolute": {
            "estimate": clean(c.absolute.estimate),
            "ci": [clean(c.absolute.ci[0]), clean(c.absolute.ci[1])],
        },
        "relative": {
            "estimate": clean(c.relative.estimate),
            "ci": [clean(c.relative.ci[0]), clean(c.relative.ci[1])],
        },
        "p_value": clean(c.absolute.p_value),
        "error": None if c.error is None else c.error.value,
    }


def _segment_cells(
    records: Sequence[Mapping[str, Any]], plan: BacktestPlan
) -> list[tuple[dict[str, str], np.ndarray[Any, Any]]]:
    names = list(plan.segments)
    if not names:
        seen: dict[str, int] = {}
        for r in records:
            for k in r.get("attributes") or {}:
                seen[k] = seen.get(k, 0) + 1
        names = sorted(seen, key=lambda k: (-seen[k], k))[: plan.max_segment_attributes]
    cells = []
    for name in sorted(names):
        column = np.array(
            [str((r.get("attributes") or {}).get(name, "")) for r in records], dtype=object
        )
        values, counts = np.unique(column[column != ""], return_counts=True)
        order = np.argsort(-counts, kind="stable")[: plan.max_segment_values]
        for i in order:
            cells.append(({name: str(values[i])}, column == values[i]))
    return cells


def _guardrail(
    metric: PlanMetric,
    comp: Comparison,
    margin: float,
    alpha: float,
    segment: dict[str, str] | None,
    variant: str,
) -> GuardrailResult:
    status = classify_guardrail(comp.relative.ci, metric.direction, margin)
    if comp.error is not None:
        status = "inconclusive"
    return GuardrailResult(
        metric=metric.name,
        variant=variant,
        segment=segment,
        direction=metric.direction,
        margin=margin,
        alpha=alpha,
        estimate=comp.relative.estimate,
        ci=comp.relative.ci,
        p_value=comp.relative.p_value,
        status=status,
        error=comp.error,
        units=(comp.control_n, comp.treatment_n),
    )


def _segment_margin(m: PlanMetric) -> float:
    return float(m.margin if m.margin is not None else (m.mde or 0.0))


def run_backtest(plan: BacktestPlan, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Judge the candidate against the baseline on historical records (module docstring).

    ``records`` are nested dicts (see :mod:`service.analysis._backtest_input`) that
    the caller has validated: every record has a label and both variants.
    """
    n = len(records)
    alpha = plan.bar_alpha
    base = _Arm(records, plan.baseline, plan)
    cand = _Arm(records, plan.candidate, plan)
    primary = next(m for m in plan.metrics if m.role == "primary")
    guards = [m for m in plan.metrics if m.role == "guardrail"]
    cells = _segment_cells(records, plan)
    judged = [(seg, mask) for seg, mask in cells if int(mask.sum()) >= plan.min_segment_records]
    family = len(guards) * (1 + len(judged)) + len(judged)
    alpha_each = guardrail_alpha(alpha, family)
    sums = {m.name: (_sums(base, m), _sums(cand, m)) for m in plan.metrics}

    def compare(m: PlanMetric, level: float, mask: Any = None) -> Comparison:
        (nc, dc), (nt, dt) = sums[m.name]
        if mask is not None:
            nc, dc, nt, dt = nc[mask], dc[mask], nt[mask], dt[mask]
        return paired_comparison(nc, dc, nt, dt, level)

    # Overall: every metric at the bar's alpha, the fixed design of the stats engine.
    rows: list[dict[str, Any]] = []
    statuses: dict[str, MetricStatus] = {}
    secondary_p: list[float] = []
    for m in plan.metrics:
        comp = compare(m, alpha)
        verdict = evaluate_design(
            [comp], design="fixed", alpha=alpha, planned_units_per_variant=None
        )
        statuses[m.name] = metric_status(verdict, m.direction)
        row = {
            "metric": m.name,
            "role": m.role,
            "variant": plan.candidate,
            "segment": None,
            **_effects(comp),
            "status": statuses[m.name],
        }
        rows.append(row)
        if m.role == "secondary":
            secondary_p.append(comp.absolute.p_value)
    adjusted = adjust_p_values(secondary_p, plan.correction, alpha)
    for row, p in zip(
        [r for r in rows if r["role"] == "secondary"], adjusted.p_values, strict=True
    ):
        row["p_value_adjusted"] = clean(p)

    guardrails: list[GuardrailResult] = []
    for m in guards:
        assert m.margin is not None
        guardrails.append(
            _guardrail(m, compare(m, alpha_each), m.margin, alpha_each, None, plan.candidate)
        )
    segment_rows: list[dict[str, Any]] = []
    segment_checks: list[GuardrailResult] = []
    for seg, mask in cells:
        size = int(mask.sum())
        entry: dict[str, Any] = {
            "segment": seg,
            "records": size,
            "judged": size >= plan.min_segment_records,
        }
        checks = []
        if entry["judged"]:
            for m in (primary, *guards):
                margin = _segment_margin(m)
                result = _guardrail(
                    m, compare(m, alpha_each, mask), margin, alpha_each, seg, plan.candidate
                )
                checks.append(result)
                if m.role == "guardrail":
                    guardrails.append(result)
                else:
                    segment_checks.append(result)
        entry["checks"] = [c.to_dict() for c in checks]
        entry["non_inferior"] = entry["judged"] and all(c.status == "ok" for c in checks)
        segment_rows.append(entry)

    stamps = np.array([_ts(r.get("timestamp")) for r in records], dtype=np.float64)
    stamps = stamps[~np.isnan(stamps)]
    days = float((stamps.max() - stamps.min()) / _DAY) if stamps.size else None
    decision = decide(
        primary_status=statuses[primary.name],
        guardrails=guardrails,
        srm_ok=True,
        days_elapsed=plan.min_days if days is None else days,
        min_days=plan.min_days,
        max_sample_reached=True,
        primary_metric=primary.name,
    )
    action = decision.action
    # decide() already words segment guardrails that warn or breach; add what it lets pass.
    failing = [c for c in segment_checks if c.status != "ok"] + [
        g for g in guardrails if g.segment is not None and g.status == "inconclusive"
    ]
    reasons = [r for r in decision.reasons if r not in _LIVE_ONLY]
    if action == "ship":
        reasons = [*reasons, "all guardrails non-inferior overall"]
    if any(g.segment is not None and g.status != "ok" for g in guardrails) or failing:
        reasons.extend(_segment_reason(c) for c in failing)
        if action == "ship":
            action = "stop"
            reasons.insert(0, "the backtest bar needs non-inferiority in every segment")
    reasons.append("paired records: both models saw every input, no sample-ratio check")
    small = [e["segment"] for e in segment_rows if not e["judged"]]
    if small:
        reasons.append(
            f"{len(small)} segment values have fewer than {plan.min_segment_records} records "
            "and were not judged: " + ", ".join(_where(s) for s in small[:10])
        )
    if days is None:
        reasons.append("records carry no timestamps: the minimum-days check was skipped")
    approved = action == "ship"
    statement = (
        f"Historical evidence: a backtest on {n} past records, not a live experiment. "
        + (
            "The candidate clears the stricter backtest bar"
            if approved
            else "The candidate does not clear the stricter backtest bar"
        )
        + f" (alpha {alpha:g}, non-inferiority in every segment)."
    )
    return {
        "evidence": "historical",
        "experiment": plan.experiment,
        "baseline": plan.baseline,
        "candidate": plan.candidate,
        "records": n,
        "period": {
            "start": float(stamps.min()) if stamps.size else None,
            "end": float(stamps.max()) if stamps.size else None,
            "days": clean(days) if days is not None else None,
        },
        "analysis": {
            "method": "paired per-record differences (delta method)",
            "design": "fixed",
            "alpha": alpha,
            "spec_alpha": plan.alpha,
            "guardrail_alpha_each": alpha_each,
            "family_size": family,
        },
        "arms": {
            plan.baseline: _arm_summary(base),
            plan.candidate: _arm_summary(cand),
        },
        "metrics": rows,
        "guardrails": [g.to_dict() for g in guardrails],
        "segments": segment_rows,
        "verdict": {
            "approved": approved,
            "action": action,
            "reasons": reasons,
            "statement": statement,
            "bar": {
                "alpha": alpha,
                "spec_alpha": plan.alpha,
                "rule": "alpha halved; primary and guardrails non-inferior in every segment",
                "min_segment_records": plan.min_segment_records,
            },
        },
    }


def _arm_summary(arm: _Arm) -> dict[str, Any]:
    row = metric_rows(total_stats(arm.frame), level=0.95, min_support=1)[0]
    row.pop("low_support", None)
    return {**row, "mode": "scored" if arm.frame.scored else "label"}


def _where(segment: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in segment.items())


def _segment_reason(c: GuardrailResult) -> str:
    span = fmt.interval(c.ci, percent=True) or fmt.MISSING
    return (
        f"{c.metric} in {_where(c.segment or {})} is {c.status}, not shown non-inferior "
        f"(relative change {fmt.pct(c.estimate, digits=2)}, CI {span}, "
        f"margin {fmt.pct(c.margin, sign=False, digits=2)})"
    )


def _ts(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan
