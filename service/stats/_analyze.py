"""One metric, one treatment against the baseline, over the looks so far.

`analyze` is what `POST /v1/analyze` calls: plain numbers in (validated, naming the
field at fault), one results `metrics` row out. `analyze_stats` does the same for
statistics objects (library use, CUPED).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.stats._boundaries import Spending
from service.stats._constants import (
    DESIGNS,
    DIRECTIONS,
    METRIC_KINDS,
    Design,
    Direction,
    ErrorCode,
    MetricKind,
    MetricStatus,
)
from service.stats._designs import DesignVerdict, evaluate_design
from service.stats._estimators import compare
from service.stats._exceptions import StatsInputError
from service.stats._results import arm_dict, clean, interval_dict
from service.stats._statistics import MeanStats, ProportionStats, RatioStats, Stats


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Cumulative per-arm sums as the caller sends them (`sum` is the numerator sum)."""

    units: int
    sum: float
    sum_sq: float | None = None
    den_sum: float | None = None
    den_sum_sq: float | None = None
    cross_sum: float | None = None


@dataclass(frozen=True, slots=True)
class Look:
    """Baseline and treatment cumulative statistics at one look."""

    baseline: ArmSummary
    treatment: ArmSummary


@dataclass(frozen=True, slots=True)
class MetricAnalysis:
    """One `metrics` row of the results, plus the design's boundary at this look.

    The numbers are those of the look the verdict reports (`verdict.look`): the
    horizon once it is passed. `horizon_reached_at` and `decided_at` are 1-based look
    numbers; `past_plan` holds the latest look after the horizon, with an
    always-valid interval and no test.
    """

    design: Design
    direction: Direction
    alpha: float
    baseline_units: int
    baseline_mean: float
    treatment_units: int
    treatment_mean: float
    absolute_estimate: float
    absolute_ci: tuple[float, float]
    relative_estimate: float
    relative_ci: tuple[float, float]
    p_value: float
    status: MetricStatus
    verdict: DesignVerdict
    error: ErrorCode | None

    def to_dict(self) -> dict[str, object]:
        return {
            "baseline": arm_dict(self.baseline_units, self.baseline_mean),
            "treatment": arm_dict(self.treatment_units, self.treatment_mean),
            "absolute": interval_dict(self.absolute_estimate, self.absolute_ci),
            "relative": interval_dict(self.relative_estimate, self.relative_ci),
            "p_value": clean(self.p_value),
            "status": self.status,
            "design": self.design,
            "alpha": self.alpha,
            "boundary": self.verdict.boundary_dict(),
            "horizon_reached_at": self.verdict.horizon,
            "decided_at": self.verdict.decided_at,
            "past_plan": None
            if self.verdict.past_plan is None
            else self.verdict.past_plan.to_dict(),
            "error": None if self.error is None else self.error.value,
        }


def metric_status(verdict: DesignVerdict, direction: Direction) -> MetricStatus:
    """`better` when significant in the planned direction, `worse` when against it."""
    if not verdict.significant or verdict.sign == 0:
        return "inconclusive"
    good = verdict.sign > 0 if direction == "increase" else verdict.sign < 0
    return "better" if good else "worse"


def _finite(value: float | None, field: str, *, required: bool = True) -> float | None:
    if value is None:
        if required:
            raise StatsInputError(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StatsInputError(field, f"must be a finite number, got {value!r}")
    return float(value)


def _arm_stats(kind: MetricKind, arm: ArmSummary, where: str) -> Stats:
    units: object = arm.units
    if isinstance(units, float) and units.is_integer():
        units = int(units)  # JSON numbers may arrive as 1000.0
    if isinstance(units, bool) or not isinstance(units, int) or units < 0:
        raise StatsInputError(f"{where}.units", f"must be an integer >= 0, got {arm.units!r}")
    total = _finite(arm.sum, f"{where}.sum")
    assert total is not None
    if kind == "proportion":
        if not 0 <= total <= units:
            raise StatsInputError(f"{where}.sum", f"must be within [0, units], got {total}")
        return ProportionStats(units, total)
    sum_sq = _finite(arm.sum_sq, f"{where}.sum_sq")
    assert sum_sq is not None
    _check_moments(units, total, sum_sq, f"{where}.sum_sq")
    if kind == "mean":
        return MeanStats(units, total, sum_sq)
    den = _finite(arm.den_sum, f"{where}.den_sum")
    den_sq = _finite(arm.den_sum_sq, f"{where}.den_sum_sq")
    cross = _finite(arm.cross_sum, f"{where}.cross_sum")
    assert den is not None and den_sq is not None and cross is not None
    _check_moments(units, den, den_sq, f"{where}.den_sum_sq")
    if cross * cross > sum_sq * den_sq * (1 + 1e-9) + 1e-9:
        raise StatsInputError(f"{where}.cross_sum", "exceeds sqrt(sum_sq * den_sum_sq)")
    return RatioStats(units, total, sum_sq, den, den_sq, cross)


def _check_moments(units: int, total: float, total_sq: float, field: str) -> None:
    if total_sq < 0:
        raise StatsInputError(field, f"must be >= 0, got {total_sq}")
    if units == 0 and (total != 0 or total_sq != 0):
        raise StatsInputError(field, "sums must be 0 when units is 0")
    if units > 0 and total * total > units * total_sq * (1 + 1e-9) + 1e-9:
        raise StatsInputError(field, "is smaller than sum^2 / units: not a sum of squares")


def analyze_stats(
    looks: Sequence[tuple[Stats, Stats]],
    *,
    direction: Direction,
    design: Design,
    alpha: float = 0.05,
    planned_units_per_variant: float | None = None,
    spending: Spending | None = None,
    final: bool = False,
    with_p_value: bool = True,
) -> MetricAnalysis:
    """Analyse (baseline, treatment) statistics at each look so far, oldest first.

    All looks must hold the same statistics type. Always-valid designs read only the
    last look; fixed and group-sequential designs read the looks up to the horizon
    and only show the ones after it (see `evaluate_design`).
    """
    if not looks:
        raise StatsInputError("looks", "at least one look is needed")
    comps = [compare(c, t, alpha) for c, t in looks]
    verdict = evaluate_design(
        comps,
        design=design,
        alpha=alpha,
        planned_units_per_variant=planned_units_per_variant,
        spending=spending,
        final=final,
        with_p_value=with_p_value,
    )
    last = comps[verdict.look - 1]
    return MetricAnalysis(
        design=design,
        direction=direction,
        alpha=alpha,
        baseline_units=last.control_n,
        baseline_mean=last.control_mean,
        treatment_units=last.treatment_n,
        treatment_mean=last.treatment_mean,
        absolute_estimate=last.absolute.estimate,
        absolute_ci=verdict.absolute_ci,
        relative_estimate=last.relative.estimate,
        relative_ci=verdict.relative_ci,
        p_value=verdict.p_value,
        status=metric_status(verdict, direction),
        verdict=verdict,
        error=last.error,
    )


def analyze(
    *,
    kind: MetricKind,
    direction: Direction,
    design: Design,
    looks: Sequence[Look],
    alpha: float = 0.05,
    planned_units_per_variant: float | None = None,
    spending: Spending | None = None,
    final: bool = False,
) -> MetricAnalysis:
    """The engine behind `POST /v1/analyze`: one metric row from cumulative sums.

    Raises `StatsInputError` (with the field at fault, e.g. `looks[2].treatment.units`)
    for input that is not a valid question; degenerate data instead gives a result
    whose `error` is set. `planned_units_per_variant` is required by the sequential
    designs, and by a fixed design given more than one look (it says which look is
    the horizon).
    """
    if kind not in METRIC_KINDS:
        raise StatsInputError("metric.kind", f"must be one of {METRIC_KINDS}, got {kind!r}")
    if direction not in DIRECTIONS:
        raise StatsInputError("metric.direction", f"must be one of {DIRECTIONS}, got {direction!r}")
    if design not in DESIGNS:
        raise StatsInputError("design", f"must be one of {DESIGNS}, got {design!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise StatsInputError("alpha", f"must be in (0, 1), got {alpha!r}")
    if planned_units_per_variant is None:
        if design != "fixed":
            raise StatsInputError("planned_units_per_variant", f"is required for {design}")
        if len(looks) > 1:
            raise StatsInputError(
                "planned_units_per_variant",
                "is required for a fixed design with several looks: it says which is the horizon",
            )
    elif not (math.isfinite(planned_units_per_variant) and planned_units_per_variant > 0):
        raise StatsInputError(
            "planned_units_per_variant", f"must be positive, got {planned_units_per_variant!r}"
        )
    if not looks:
        raise StatsInputError("looks", "at least one look is needed")
    pairs: list[tuple[Stats, Stats]] = []
    previous = (0, 0)
    for i, look in enumerate(looks):
        c = _arm_stats(kind, look.baseline, f"looks[{i}].baseline")
        t = _arm_stats(kind, look.treatment, f"looks[{i}].treatment")
        if c.n < previous[0]:
            raise StatsInputError(f"looks[{i}].baseline.units", "looks must be cumulative")
        if t.n < previous[1]:
            raise StatsInputError(f"looks[{i}].treatment.units", "looks must be cumulative")
        previous = (c.n, t.n)
        pairs.append((c, t))
    return analyze_stats(
        pairs,
        direction=direction,
        design=design,
        alpha=float(alpha),
        planned_units_per_variant=planned_units_per_variant,
        spending=spending,
        final=final,
    )
