"""The plan of an experiment: units per variant, total units, days, the MDE curve."""

from __future__ import annotations

import math
from typing import Any

from service.spec import ExperimentRecord, ExperimentSpec
from service.stats import (
    RampStep,
    StatsInputError,
    minimum_detectable_effect,
    plan_experiment,
    ramp_timing,
    ramp_units,
)

__all__ = [
    "CURVE_DAYS",
    "observed_daily_units",
    "planned_units_per_variant",
    "ramp_steps",
    "spec_plan",
]

CURVE_DAYS = (7, 14, 21, 28, 42, 56)


def observed_daily_units(record: ExperimentRecord, total_units: float, now: float) -> float | None:
    """Units a day at the spec's full traffic, observed: ``None`` before an hour has passed
    or a unit arrived. A ramp's earlier steps count at their share of the full traffic."""
    if record.started_at is None or total_units <= 0:
        return None
    end = record.ended_at or now
    if end - record.started_at < 3600:
        return None
    if record.rollout is None:
        seconds = end - record.started_at
    else:
        seconds = record.rollout.full_share_seconds(record.spec.traffic, end)
    return total_units / (seconds / 86_400)


def _daily_units(spec: ExperimentSpec, observed_daily_units: float | None) -> float | None:
    if observed_daily_units is not None and observed_daily_units > 0:
        return observed_daily_units
    return spec.analysis.expected_daily_units


def ramp_steps(spec: ExperimentSpec) -> list[RampStep] | None:
    """The spec's rollout as shares of its full traffic, or None without a rollout."""
    if spec.rollout is None:
        return None
    return [
        RampStep(s.traffic / spec.traffic, s.min_duration / 86_400, s.min_units)
        for s in spec.rollout.steps
    ]


def _ramped(
    plan: dict[str, Any], spec: ExperimentSpec, steps: list[RampStep], daily: float
) -> dict[str, Any]:
    """The plan's days through the ramp: each step's days at its traffic, then full share."""
    timing = ramp_timing(float(plan["total_units"]), daily, steps)
    assert spec.rollout is not None
    return {
        **plan,
        "days": max(math.ceil(timing.days - 1e-9), spec.analysis.min_days),
        "ramp_days": round(timing.days, 4),
        "rollout": [
            {"step": i + 1, "traffic": step.traffic, "days": round(days, 4), "units": round(units)}
            for i, (step, days, units) in enumerate(
                zip(spec.rollout.steps, timing.step_days, timing.step_units, strict=True)
            )
        ],
    }


def spec_plan(spec: ExperimentSpec, observed_daily_units: float | None = None) -> dict[str, Any]:
    """Power analysis of the primary metric under the spec's design.

    Days use the observed traffic once the experiment runs (``observed_daily_units``, at
    the spec's full ``traffic``), else ``analysis.expected_daily_units``; with a rollout,
    each step runs its minimum time at its traffic (``rollout``: days and units per step);
    never fewer than ``min_days``. ``error`` is set (and the numbers are null) when the
    spec lacks what a plan needs.
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
    steps = ramp_steps(spec)
    curve: list[dict[str, float]] = []
    if daily:
        for days in CURVE_DAYS:
            per_variant = (days * daily if steps is None else ramp_units(days, daily, steps)) / len(
                spec.variants
            )
            try:
                mde = minimum_detectable_effect(units_per_variant=per_variant, **common)
            except StatsInputError:
                continue
            if math.isfinite(mde):
                curve.append({"days": days, "mde": mde, "units_per_variant": per_variant})
    result = {
        **base,
        **plan.to_dict(),
        "days": plan.days,
        "mde_curve": curve,
        "error": None,
    }
    return result if steps is None or not daily else _ramped(result, spec, steps, daily)


def planned_units_per_variant(plan: dict[str, Any], spec: ExperimentSpec) -> tuple[float, str]:
    """The maximum sample per variant the analysis plans for, and where it came from."""
    if plan.get("units_per_variant"):
        return float(plan["units_per_variant"]), "plan"
    a = spec.analysis
    if a.expected_daily_units:
        days = max(a.min_days, 7)
        return a.expected_daily_units * days / len(spec.variants), "expected_daily_units"
    return 10_000.0, "default"
