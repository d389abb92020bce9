"""The three analysis designs applied to the comparisons at each look.

* `fixed`: the classic two-sided test, read once, at the horizon: the first look whose
  information fraction reaches 1 (or the look declared `final`; with no plan, the one
  look given). Before it the verdict stays inconclusive whatever the p-value, since
  peeking would inflate the error rate.
* `group_sequential`: Lan-DeMets boundaries at the information fractions observed at
  every look up to the horizon, which spends all the alpha that is left. The verdict is
  the first crossing; CIs are repeated CIs at the boundary of the reported look, the
  p-value is the repeated p-value.
* `always_valid`: the normal-mixture confidence sequence tuned to the planned units;
  valid at any time, reads only the latest look.

For `fixed` and `group_sequential` the verdict at the horizon is final. Looks after it
are shown (`past_plan`: the latest look's estimates with an always-valid interval)
but never tested: the status, the p-value and the reported estimate and CI keep the
horizon's answer, so running past the plan buys no second chance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special

from service.stats._always_valid import information_fraction, multiplier_at, p_value_at
from service.stats._boundaries import Spending
from service.stats._constants import FAILED, Design
from service.stats._group_sequential import GroupSequentialResult, group_sequential_test
from service.stats._intervals import interval, relative_interval
from service.stats._results import NAN, Comparison, arm_dict, clean, interval_dict

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class PastPlan:
    """The latest look, taken after the horizon: estimates with always-valid intervals.

    Shown so a reader sees the current data; never tested (the verdict is the
    horizon's).
    """

    look: int
    information: float
    baseline_units: int
    baseline_mean: float
    treatment_units: int
    treatment_mean: float
    absolute_estimate: float
    absolute_ci: tuple[float, float]
    relative_estimate: float
    relative_ci: tuple[float, float]

    def to_dict(self) -> dict[str, object]:
        return {
            "look": self.look,
            "information": clean(self.information),
            "baseline": arm_dict(self.baseline_units, self.baseline_mean),
            "treatment": arm_dict(self.treatment_units, self.treatment_mean),
            "absolute": interval_dict(self.absolute_estimate, self.absolute_ci),
            "relative": interval_dict(self.relative_estimate, self.relative_ci),
            "interval": "always_valid",
        }


@dataclass(frozen=True, slots=True)
class DesignVerdict:
    """What the design concludes given the looks so far.

    `look` is the 1-based look whose numbers are reported (the horizon once it is
    passed, else the latest); `boundary` is the critical |z| there; `sign` is the
    sign of the effect that made the result significant (0 when not significant);
    `first_crossing` is the look at which a group-sequential boundary was first
    crossed; `horizon` the look that reached the plan; `decided_at` the look that
    settled the verdict (None while it is open); `past_plan` the latest look when it
    comes after the horizon.
    """

    design: Design
    alpha: float
    look: int
    information: float | None
    z: float
    boundary: float
    significant: bool
    sign: int
    first_crossing: int | None
    final: bool
    p_value: float
    absolute_ci: tuple[float, float]
    relative_ci: tuple[float, float]
    sequential: GroupSequentialResult | None = None
    """Every look with its boundary (group-sequential designs only)."""
    horizon: int | None = None
    decided_at: int | None = None
    past_plan: PastPlan | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            **self.boundary_dict(),
            "alpha": self.alpha,
            "p_value": clean(self.p_value),
            "absolute_ci": [clean(self.absolute_ci[0]), clean(self.absolute_ci[1])],
            "relative_ci": [clean(self.relative_ci[0]), clean(self.relative_ci[1])],
            "horizon_reached_at": self.horizon,
            "decided_at": self.decided_at,
            "past_plan": None if self.past_plan is None else self.past_plan.to_dict(),
            "looks": None if self.sequential is None else self.sequential.to_dict()["looks"],
        }

    def boundary_dict(self) -> dict[str, object]:
        """The `boundary` object of a results row."""
        return {
            "design": self.design,
            "look": self.look,
            "information": None if self.information is None else clean(self.information),
            "z": clean(self.z),
            "critical": clean(self.boundary),
            "crossed": self.significant,
            "first_crossing": self.first_crossing,
            "final": self.final,
        }


def _fraction(c: Comparison, planned: float) -> float:
    return information_fraction(c.control_n, c.treatment_n, planned)


def _horizon(fractions: Sequence[float], final: bool) -> int | None:
    """0-based index of the first look at the planned size (or the last, if final)."""
    for i, t in enumerate(fractions):
        if t >= 1.0 - _EPS:
            return i
    return len(fractions) - 1 if final else None


def _past_plan(
    comps: Sequence[Comparison], horizon: int | None, alpha: float, planned: float | None
) -> PastPlan | None:
    """The latest look with its always-valid interval, when it comes after the horizon."""
    if horizon is None or horizon == len(comps) - 1 or planned is None:
        return None
    c = comps[-1]
    t = _fraction(c, planned)
    mult = multiplier_at(alpha, t) if c.error not in FAILED else math.inf
    return PastPlan(
        look=len(comps),
        information=t,
        baseline_units=c.control_n,
        baseline_mean=c.control_mean,
        treatment_units=c.treatment_n,
        treatment_mean=c.treatment_mean,
        absolute_estimate=c.absolute.estimate,
        absolute_ci=interval(c.absolute.estimate, c.absolute.se, mult),
        relative_estimate=c.relative.estimate,
        relative_ci=relative_interval(c, mult),
    )


def _fixed(
    comps: Sequence[Comparison], alpha: float, planned: float | None, final: bool
) -> DesignVerdict:
    fractions: list[float | None]
    horizon: int | None
    if planned is None:  # no plan: the caller declares the last look the horizon
        fractions, horizon = [None] * len(comps), len(comps) - 1
    else:
        known = [_fraction(c, planned) for c in comps]
        fractions, horizon = list(known), _horizon(known, final)
    shown = len(comps) - 1 if horizon is None else horizon
    c = comps[shown]
    significant = horizon is not None and c.error not in FAILED and c.absolute.p_value < alpha
    return DesignVerdict(
        design="fixed",
        alpha=alpha,
        look=shown + 1,
        information=fractions[shown],
        z=c.z,
        boundary=float(special.stdtrit(c.df, 1.0 - alpha / 2.0)),
        significant=bool(significant),
        sign=int(math.copysign(1, c.absolute.estimate)) if significant else 0,
        first_crossing=None,
        final=horizon is not None,
        p_value=c.absolute.p_value,
        absolute_ci=c.absolute.ci,
        relative_ci=c.relative.ci,
        horizon=None if horizon is None else horizon + 1,
        decided_at=None if horizon is None else horizon + 1,
        past_plan=_past_plan(comps, horizon, alpha, planned),
    )


def _always_valid(comps: Sequence[Comparison], alpha: float, planned: float) -> DesignVerdict:
    c = comps[-1]
    t = _fraction(c, planned)
    mult = multiplier_at(alpha, t)
    z = c.z
    p = p_value_at(z, t, alpha) if c.error not in FAILED else 1.0
    significant = c.error not in FAILED and math.isfinite(z) and abs(z) >= mult
    return DesignVerdict(
        design="always_valid",
        alpha=alpha,
        look=len(comps),
        information=t,
        z=z,
        boundary=mult,
        significant=significant,
        sign=int(math.copysign(1, z)) if significant else 0,
        first_crossing=None,
        final=t >= 1.0 - _EPS,
        p_value=p,
        absolute_ci=interval(c.absolute.estimate, c.absolute.se, mult),
        relative_ci=relative_interval(c, mult),
    )


def _group_sequential(
    comps: Sequence[Comparison],
    alpha: float,
    planned: float,
    spending: Spending,
    final: bool,
    with_p_value: bool,
) -> DesignVerdict:
    zs = [c.z if c.error not in FAILED else NAN for c in comps]
    result = group_sequential_test(
        zs,
        [_fraction(c, planned) for c in comps],
        alpha,
        spending,
        final=final,
        with_p_value=with_p_value,
    )
    horizon = None if result.horizon is None else result.horizon - 1
    shown = len(comps) - 1 if horizon is None else horizon
    c = comps[shown]
    first = result.first_crossing
    boundary = result.boundary
    return DesignVerdict(
        design="group_sequential",
        alpha=alpha,
        look=shown + 1,
        information=result.looks[shown].information,
        z=c.z,
        boundary=boundary,
        significant=first is not None,
        sign=0 if first is None else int(math.copysign(1, result.looks[first - 1].z)),
        first_crossing=first,
        final=horizon is not None,
        p_value=result.p_value,
        absolute_ci=interval(c.absolute.estimate, c.absolute.se, boundary),
        relative_ci=relative_interval(c, boundary),
        sequential=result,
        horizon=result.horizon,
        decided_at=result.decided_at,
        past_plan=_past_plan(comps, horizon, alpha, planned),
    )


def evaluate_design(
    comparisons: Sequence[Comparison],
    *,
    design: Design,
    alpha: float,
    planned_units_per_variant: float | None,
    spending: Spending | None = None,
    final: bool = False,
    with_p_value: bool = True,
) -> DesignVerdict:
    """Apply a design to the comparisons at every look so far (oldest first).

    `planned_units_per_variant` is required for the sequential designs. `final`
    declares the last look the horizon (when no earlier look reached the plan): a
    fixed design reads its verdict there, a group-sequential one spends all remaining
    alpha. A fixed design without a plan reads the last look.
    """
    if not comparisons:
        raise ValueError("at least one look is needed")
    if design == "fixed":
        return _fixed(comparisons, alpha, planned_units_per_variant, final)
    if planned_units_per_variant is None:
        raise ValueError(f"{design} needs planned_units_per_variant")
    if design == "always_valid":
        return _always_valid(comparisons, alpha, planned_units_per_variant)
    return _group_sequential(
        comparisons, alpha, planned_units_per_variant, spending or Spending(), final, with_p_value
    )
