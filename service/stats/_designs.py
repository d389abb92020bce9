"""The three analysis designs applied to the comparisons at each look.

* `fixed`: the classic two-sided test, read only at the planned horizon (information
  fraction >= 1, a look declared `final`, or whenever no plan is given); before that
  the verdict stays inconclusive whatever the p-value, since peeking would inflate
  the error rate.
* `group_sequential`: Lan-DeMets boundaries at the information fractions observed at
  every look (effective units per variant / planned units per variant, capped at 1).
  The verdict is the first crossing; CIs are repeated CIs at the current boundary,
  the p-value is the repeated p-value.
* `always_valid`: the normal-mixture confidence sequence tuned to the planned units;
  valid at any time, reads only the latest look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special

from service.stats._always_valid import information_fraction, multiplier_at, p_value_at
from service.stats._constants import Design, ErrorCode
from service.stats._group_sequential import GroupSequentialResult, group_sequential_test
from service.stats._results import NAN, Comparison, clean
from service.stats._spending import Spending

_FAILED = (ErrorCode.INSUFFICIENT_DATA, ErrorCode.ZERO_DENOMINATOR, ErrorCode.ZERO_VARIANCE)
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class DesignVerdict:
    """What the design concludes at the latest look.

    `boundary` is the critical |z| at this look; `sign` is the sign of the effect
    that made the result significant (0 when not significant); `first_crossing` is the
    1-based look at which a group-sequential boundary was first crossed.
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

    def to_dict(self) -> dict[str, object]:
        return {
            **self.boundary_dict(),
            "alpha": self.alpha,
            "p_value": clean(self.p_value),
            "absolute_ci": [clean(self.absolute_ci[0]), clean(self.absolute_ci[1])],
            "relative_ci": [clean(self.relative_ci[0]), clean(self.relative_ci[1])],
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


def _interval(estimate: float, se: float, mult: float) -> tuple[float, float]:
    if not (math.isfinite(se) and math.isfinite(mult)):
        return (NAN, NAN)
    return (estimate - mult * se, estimate + mult * se)


def _fraction(c: Comparison, planned: float) -> float:
    return information_fraction(c.control_n, c.treatment_n, planned)


def _fixed(
    comps: Sequence[Comparison], alpha: float, planned: float | None, final: bool
) -> DesignVerdict:
    c = comps[-1]
    t = None if planned is None else _fraction(c, planned)
    at_horizon = final or t is None or t >= 1.0 - _EPS
    ok = c.error not in _FAILED
    significant = ok and at_horizon and c.absolute.p_value < alpha
    return DesignVerdict(
        design="fixed",
        alpha=alpha,
        look=len(comps),
        information=t,
        z=c.z,
        boundary=float(special.stdtrit(c.df, 1.0 - alpha / 2.0)),
        significant=bool(significant),
        sign=int(math.copysign(1, c.absolute.estimate)) if significant else 0,
        first_crossing=None,
        final=at_horizon,
        p_value=c.absolute.p_value,
        absolute_ci=c.absolute.ci,
        relative_ci=c.relative.ci,
    )


def _always_valid(comps: Sequence[Comparison], alpha: float, planned: float) -> DesignVerdict:
    c = comps[-1]
    t = _fraction(c, planned)
    mult = multiplier_at(alpha, t)
    z = c.z
    p = p_value_at(z, t, alpha) if c.error not in _FAILED else 1.0
    significant = c.error not in _FAILED and math.isfinite(z) and abs(z) >= mult
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
        absolute_ci=_interval(c.absolute.estimate, c.absolute.se, mult),
        relative_ci=_interval(c.relative.estimate, c.relative.se, mult),
    )


def _group_sequential(
    comps: Sequence[Comparison],
    alpha: float,
    planned: float,
    spending: Spending,
    final: bool,
    with_p_value: bool,
) -> DesignVerdict:
    zs = [c.z if c.error not in _FAILED else NAN for c in comps]
    result = group_sequential_test(
        zs,
        [_fraction(c, planned) for c in comps],
        alpha,
        spending,
        final=final,
        with_p_value=with_p_value,
    )
    last = comps[-1]
    first = result.first_crossing
    boundary = result.boundary
    return DesignVerdict(
        design="group_sequential",
        alpha=alpha,
        look=len(comps),
        information=result.looks[-1].information,
        z=last.z,
        boundary=boundary,
        significant=first is not None,
        sign=0 if first is None else int(math.copysign(1, result.looks[first - 1].z)),
        first_crossing=first,
        final=final or result.looks[-1].information >= 1.0 - _EPS,
        p_value=result.p_value,
        absolute_ci=_interval(last.absolute.estimate, last.absolute.se, boundary),
        relative_ci=_interval(last.relative.estimate, last.relative.se, boundary),
        sequential=result,
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
    declares this look the last: a fixed design reads its verdict now, a
    group-sequential one spends all remaining alpha.
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
