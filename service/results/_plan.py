"""The plan of an experiment: units per variant, total units, days, the MDE curve."""

from __future__ import annotations

import math
from typing import Any

from service.spec import ExperimentSpec
from service.stats import StatsInputError, minimum_detectable_effect, plan_experiment

__all__ = ["CURVE_DAYS", "planned_units_per_variant", "spec_plan"]

CURVE_DAYS = (7, 14, 21, 28, 42, 56)


def _daily_units(spec: ExperimentSpec, observed_daily_units: float | None) -> float | None:
    if observed_daily_units is not None and observed_daily_units > 0:
        return observed_daily_units
    return spec.analysis.expected_daily_units


def spec_plan(spec: ExperimentSpec, observed_daily_units: float | None = None) -> dict[str, Any]:
    """Power analysis of the primary metric under the spec's design.

    Days use the observed traffic once the experiment runs (``observed_daily_units``),
    else ``analysis.expected_daily_units``; never fewer than ``min_days``. ``error`` is set
    (and the numbers are null) when the spec lacks what a plan needs.
    """
    primary = spec.primary
    a = spec.analysis
    daily = _daily_units(spec, observed_daily_units)
    looks = a.looks if a.design == "group_sequential" else 1
    base: dict[str, Any] = {
        "metric": primary.name,
        "kind": primary.kind,
        "design": a.design,
        "looks": looks,
        "alpha": a.alpha,
        "power": a.power,
        "mde": primary.mde,
        "baseline_mean": primary.baseline_mean,
        "variants": len(spec.variants),
        "daily_units": daily,
        "daily_units_source": "observed"
        if observed_daily_units
        else ("expected" if daily else None),
        "min_days": a.min_days,
    }
    if primary.baseline_mean is None or primary.mde is None:
        return {
            **base,
            "units_per_variant": None,
            "total_units": None,
            "days": None,
            "mde_curve": [],
            "error": f"metrics.{spec.metrics.index(primary)}.baseline_mean is needed to plan",
        }
    common: dict[str, Any] = {
        "kind": primary.kind,
        "baseline_mean": primary.baseline_mean,
        "direction": primary.direction,
        "alpha": a.alpha,
        "power": a.power,
        "design": a.design,
        "looks": looks,
        "baseline_sd": primary.baseline_sd,
        "variants": len(spec.variants),
    }
    try:
        plan = plan_experiment(mde=primary.mde, daily_units=daily, min_days=a.min_days, **common)
    except StatsInputError as exc:
        return {
            **base,
            "units_per_variant": None,
            "total_units": None,
            "days": None,
            "mde_curve": [],
            "error": f"{exc.field}: {exc.message}",
        }
    curve: list[dict[str, float]] = []
    if daily:
        for days in CURVE_DAYS:
            try:
                mde = minimum_detectable_effect(days=days, daily_units=daily, **common)
            except StatsInputError:
                continue
            if math.isfinite(mde):
                curve.append({"days": days, "mde": mde})
    return {
        **base,
        **plan.to_dict(),
        "days": plan.days,
        "mde_curve": curve,
        "error": None,
    }


def planned_units_per_variant(plan: dict[str, Any], spec: ExperimentSpec) -> tuple[float, str]:
    """The maximum sample per variant the analysis plans for, and where it came from."""
    if plan.get("units_per_variant"):
        return float(plan["units_per_variant"]), "plan"
    a = spec.analysis
    if a.expected_daily_units:
        days = max(a.min_days, 7)
        return a.expected_daily_units * days / len(spec.variants), "expected_daily_units"
    return 10_000.0, "default"
