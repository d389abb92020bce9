"""Shape the results and plan documents into what the experiment templates show.

Only reads the documents (``GET /v1/experiments/{key}/results`` and ``/plan`` shapes);
every number plotted is taken from them unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from service import format as fmt
from service.spec import ExperimentSpec
from service.spec.models import Metric
from service.stats import SRM_THRESHOLD
from service.ui._rollout_view import step_marks
from service.ui.plots import (
    ForestRow,
    Look,
    MdePoint,
    TimePoint,
    forest_plot,
    mde_curve,
    sequential_plot,
    units_plot,
)

__all__ = ["plan_view", "results_view", "segment_label", "total_units"]

Doc = Mapping[str, Any]


def _get(doc: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(part)
    return doc


_float = fmt.as_float


def _ci(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return _float(value[0]), _float(value[1])
    return None, None


segment_label = fmt.segment


def _segment_key(segment: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(segment, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in segment.items()))
    return ()


def total_units(results: Doc | None) -> int | None:
    units = _get(results, "units")
    if not isinstance(units, Mapping):
        return None
    return int(sum(n for n in units.values() if isinstance(n, int | float)))


def _cell(row: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return str(row.get("variant")), _segment_key(row.get("segment"))


def _row(
    plotted: Mapping[str, Any],
    metric_row: Mapping[str, Any] | None,
    guard: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One forest row: the lift plotted comes from ``plotted``; means from the metric row."""
    lower, upper = _ci(_get(plotted, "relative", "ci"))
    means = metric_row or {}
    status = str(means.get("status") or plotted.get("status") or "")
    guard_status = None if guard is None else str(guard.get("status") or "")
    return {
        "variant": str(plotted.get("variant") or ""),
        "segment": segment_label(plotted.get("segment")),
        "whole": not plotted.get("segment"),
        "baseline_mean": _float(_get(means, "baseline", "mean")),
        "baseline_units": _get(means, "baseline", "units"),
        "treatment_mean": _float(_get(means, "treatment", "mean")),
        "treatment_units": _get(means, "treatment", "units"),
        "estimate": _float(_get(plotted, "relative", "estimate")),
        "lower": lower,
        "upper": upper,
        "lift": fmt.lift(
            plotted.get("relative"),
            percent=True,
            label=fmt.guardrail_confidence(plotted) if guard is plotted else "",
        ),
        "p_value": _float(plotted.get("p_value")),
        "status": status,
        "guardrail": guard_status,
        "breached": "breached" in (status, guard_status),
    }


def _metric_view(
    metric: Metric, rows: list[Mapping[str, Any]], guards: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """A guardrail plots its guardrail rows (their CI decides a breach); others the metric's."""
    rows_by_cell = {_cell(r): r for r in rows}
    guards_by_cell = {_cell(g): g for g in guards}
    plotted = guards if metric.role == "guardrail" and guards else rows or guards
    shown = [_row(p, rows_by_cell.get(_cell(p)), guards_by_cell.get(_cell(p))) for p in plotted]
    # Whole population first, then segments in the document's order, per variant.
    order = {v: i for i, v in enumerate(dict.fromkeys(r["variant"] for r in shown))}
    shown.sort(key=lambda r: (order[r["variant"]], not r["whole"]))
    forest = forest_plot(
        [
            ForestRow(
                variant=r["variant"],
                segment=r["segment"],
                estimate=r["estimate"],
                lower=r["lower"],
                upper=r["upper"],
                status=r["guardrail"] or r["status"],
                breached=r["breached"],
            )
            for r in shown
        ],
        metric=metric.name,
        margin=metric.margin if metric.role == "guardrail" else None,
        direction=metric.direction,
    )
    return {
        "name": metric.name,
        "kind": metric.kind,
        "role": metric.role,
        "direction": metric.direction,
        "mde": metric.mde,
        "margin": metric.margin,
        "rows": shown,
        "breached": any(r["breached"] for r in shown),
        "svg": Markup(forest),
    }


def _looks(doc: Any) -> list[Look]:
    looks = _get(doc, "looks")
    if not isinstance(looks, Sequence):
        return []
    out: list[Look] = []
    for i, lk in enumerate(looks, start=1):
        if not isinstance(lk, Mapping):
            continue
        out.append(
            Look(
                look=int(lk.get("look") or i),
                units=int(lk.get("units") or 0),
                information=_float(lk.get("information")) or 0.0,
                z=_float(lk.get("z")),
                boundary=_float(lk.get("boundary")),
            )
        )
    return out


def _timeline(doc: Any) -> list[TimePoint]:
    if not isinstance(doc, Sequence):
        return []
    points = []
    for entry in doc:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("hour"), int | float):
            continue
        units = entry.get("units") if isinstance(entry.get("units"), Mapping) else {}
        points.append(
            TimePoint(
                hour=int(entry["hour"]),
                units={str(k): int(v) for k, v in (units or {}).items()},
                srm_p_value=_float(entry.get("srm_p_value")),
            )
        )
    return sorted(points, key=lambda p: p.hour)


def _past_plan(metrics: Sequence[Mapping[str, Any]], variant: Any) -> dict[str, Any] | None:
    """The primary's current totals once past the plan: shown, never tested."""
    for row in metrics:
        latest = row.get("latest")
        if row.get("role") != "primary" or row.get("variant") != variant:
            continue
        if isinstance(latest, Mapping) and latest.get("past_plan") is True:
            lower, upper = _ci(_get(latest, "relative", "ci"))
            return {
                "estimate": _float(_get(latest, "relative", "estimate")),
                "lower": lower,
                "upper": upper,
            }
    return None


def _sequential(
    doc: Any, default_design: str, metrics: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """One picture per candidate (the document holds a list; a single object is accepted)."""
    items = [doc] if isinstance(doc, Mapping) else doc if isinstance(doc, Sequence) else []
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        looks = _looks(item)
        design = str(item.get("design") or default_design)
        out.append(
            {
                "variant": item.get("variant"),
                "design": design,
                "looks": looks,
                "next_look_units": _float(item.get("next_look_units")),
                "planned_looks": item.get("planned_looks"),
                "horizon_reached_at": item.get("horizon_reached_at"),
                "decided_at": item.get("decided_at"),
                "past_plan": _past_plan(metrics, item.get("variant")),
                "svg": Markup(sequential_plot(looks, design=design)),
            }
        )
    return out


def results_view(spec: ExperimentSpec, results: Doc) -> dict[str, Any]:
    """Everything the results section shows, with the SVG plots drawn."""
    raw_metrics = [m for m in results.get("metrics") or [] if isinstance(m, Mapping)]
    raw_guards = [g for g in results.get("guardrails") or [] if isinstance(g, Mapping)]
    metrics = [
        _metric_view(
            metric,
            [r for r in raw_metrics if r.get("metric") == metric.name],
            [g for g in raw_guards if g.get("metric") == metric.name],
        )
        for metric in spec.metrics
    ]
    pictures = _sequential(results.get("sequential"), spec.analysis.design, raw_metrics)
    units = results.get("units") if isinstance(results.get("units"), Mapping) else {}
    srm = results.get("srm") if isinstance(results.get("srm"), Mapping) else {}
    decision = results.get("decision") if isinstance(results.get("decision"), Mapping) else {}
    reasons = [str(r) for r in (decision or {}).get("reasons") or []]
    timeline = _timeline(results.get("timeline"))
    return {
        "status": str(results.get("status") or ""),
        "units": dict(units or {}),
        "total_units": total_units(results),
        "srm_p_value": _float((srm or {}).get("p_value")),
        "srm_ok": (srm or {}).get("ok", True) is not False,
        "srm_text": fmt.srm(srm)[0],
        "srm_state": fmt.srm(srm)[1],
        "has_data": bool(total_units(results)),
        "decision": str((decision or {}).get("action") or "continue"),
        "reasons": reasons,
        "metrics": metrics,
        "breached": any(m["breached"] for m in metrics)
        or any(g.get("status") == "breached" for g in raw_guards),
        "sequential": pictures,
        "units_svg": Markup(
            units_plot(
                timeline,
                spec.variant_keys(),
                srm_threshold=SRM_THRESHOLD,
                steps=step_marks(results.get("rollout")),
            )
        )
        if timeline
        else None,
    }


_PLAN_NOTES = (
    ("fixed_units_per_variant", "Units per variant for a fixed-horizon test"),
    ("inflation", "Sample inflation of the design"),
    ("daily_units", "Units per day assumed"),
    ("daily_units_source", "Traffic from"),
    ("ramp_days", "Days through the rollout's ramp"),
)


def _plan_notes(plan: Doc) -> list[tuple[str, Any]]:
    return [(label, plan[k]) for k, label in _PLAN_NOTES if plan.get(k) is not None]


def plan_view(plan: Doc | None, units_so_far: int | None) -> dict[str, Any] | None:
    """The plan section: sample sizes, days, progress and the MDE-vs-duration curve."""
    if plan is None:
        return None
    per_variant = plan.get("units_per_variant")
    total = _float(plan.get("total_units"))
    if total is None and isinstance(per_variant, Mapping):
        total = float(sum(v for v in per_variant.values() if isinstance(v, int | float)))
    days = _float(plan.get("days"))
    curve = [
        MdePoint(days=float(p.get("days") or 0.0), mde=_float(p.get("mde")))
        for p in plan.get("mde_curve") or []
        if isinstance(p, Mapping)
    ]
    progress = None
    if total and units_so_far is not None:
        progress = min(units_so_far / total, 1.0)
    return {
        "units_per_variant": per_variant,
        "total_units": total,
        "days": days,
        "min_days": _float(plan.get("min_days")),
        "units": units_so_far,
        "progress": progress,
        "mde_curve": curve,
        "mde_svg": Markup(mde_curve(curve, planned_days=days, target=_float(plan.get("mde"))))
        if curve
        else None,
        "notes": _plan_notes(plan),
        "error": plan.get("error") or None,
    }
