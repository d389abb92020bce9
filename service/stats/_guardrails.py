"""Guardrails: direction-aware non-inferiority on always-valid CIs of the relative change.

With relative CI [lo, hi], margin m and the harmful side being down for
`increase` metrics (up for `decrease` metrics), in this order:

* `breached`: the CI lies entirely beyond the margin on the harmful side;
* `warning`: the CI lies entirely on the harmful side of zero;
* `ok`: non-inferiority shown, the CI lies entirely on the good side of the margin;
* `inconclusive`: anything else.

Guardrails are watched continuously, so every cell's interval is valid at all times.
The error budget:

* Family: each of the m guardrail x segment x variant cells gets alpha / m
  (`guardrail_alpha`). Whatever a cell's true change, only one side of its interval
  can mislead: a false `warning`/`breached` needs the interval wholly below a truth
  that is not harmful (its upper end too low), a false `ok` needs it wholly above a
  truth beyond the margin (its lower end too high). So it suffices that each side
  errs with probability <= alpha / m, and the family-wise error rate is <= alpha.
* Time: of a cell's budget, `PLAN_SHARE` is spent up to the cell's planned size by a
  continuous-monitoring O'Brien-Fleming boundary, |z| >= c / sqrt(t) (by the
  reflection principle a side crosses it before t = 1 with probability exactly
  2 (1 - Phi(c))), and the rest by the normal-mixture confidence sequence at any
  time, before or after (Ville; a side of the symmetric mixture at two-sided level
  2a errs with probability <= a / (1 - a), since the mixture over the other side's
  effects is below 1 there). The interval uses whichever boundary is lower.
* Size: t is the cell's own information fraction, its effective units over its
  expected size: the planned units per variant times its share of the experiment's
  units (`GuardrailCell.share`, a segment's observed share). Tuned to the whole
  experiment instead, a 10 % segment would sit at t = 0.1 at the planned size, where
  the boundary is far wider.

The interval is the delta-method one (Fieller's where that passes -100 %), the
non-inferiority statistic with the most power against a harm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import special

from service.stats._always_valid import always_valid_p, cs_multiplier
from service.stats._batch import FloatArray, StatsBatch, stats_kind
from service.stats._constants import DIRECTIONS, Direction, ErrorCode, GuardrailStatus
from service.stats._estimators import ERROR_TABLE, ComparisonBatch, compare_batch
from service.stats._exceptions import StatsInputError
from service.stats._results import clean, interval_dict
from service.stats._statistics import Stats

PLAN_SHARE = 0.9
"""Share of each cell's error budget spent by its planned size (see the module doc).

Measured (`scripts/validate_stats.py`): against spending it all on the mixture, a
-20 % regression in a 10 % segment at the planned size is breached in 61 % instead of
45 % of runs (p = 0.05), at the cost of slower alarms early on and past the plan.
"""

GUARDRAIL_STATUSES: tuple[GuardrailStatus, ...] = ("ok", "inconclusive", "warning", "breached")
"""Guardrail statuses by the codes of `guardrail_status_codes`."""
_OK, _INCONCLUSIVE, _WARNING, _BREACHED = 0, 1, 2, 3


def guardrail_status_codes(
    lower: FloatArray, upper: FloatArray, harmful_up: npt.NDArray[np.bool_], margin: FloatArray
) -> npt.NDArray[np.int8]:
    """Vectorised rule; codes index `GUARDRAIL_STATUSES`. NaN bounds give `inconclusive`."""
    # Mirror `decrease` metrics so that harm is always downwards.
    lo = np.where(harmful_up, -upper, lower)
    hi = np.where(harmful_up, -lower, upper)
    codes = np.full(lo.shape, _INCONCLUSIVE, dtype=np.int8)
    codes[lo > -margin] = _OK
    codes[hi < 0] = _WARNING
    codes[hi < -margin] = _BREACHED
    return codes


def classify_guardrail(
    ci: tuple[float, float], direction: Direction, margin: float
) -> GuardrailStatus:
    """Status of one relative-change CI against a relative margin (see module doc)."""
    code = guardrail_status_codes(
        np.array([ci[0]]),
        np.array([ci[1]]),
        np.array([direction == "decrease"]),
        np.array([margin]),
    )
    return GUARDRAIL_STATUSES[int(code[0])]


def _boundaries(budget: float) -> tuple[float, float]:
    """The O'Brien-Fleming constant c and the mixture's two-sided level for a budget."""
    plan = budget * PLAN_SHARE
    rest = budget - plan
    return float(-special.ndtri(plan / 2.0)), 2.0 * rest / (1.0 + rest)


def guardrail_multiplier(budget: float, fraction: float | FloatArray) -> FloatArray:
    """Half-width of a guardrail interval in standard errors at information `fraction`.

    Each side of the interval errs with probability at most `budget` over all time.
    Infinite at zero information. Works elementwise on arrays.
    """
    c, level = _boundaries(budget)
    t = np.asarray(fraction, dtype=np.float64)
    with np.errstate(all="ignore"):
        plan = np.where((t > 0) & (t <= 1.0), c / np.sqrt(t), np.inf)
    return np.asarray(np.minimum(plan, cs_multiplier(level, t)), dtype=np.float64)


def guardrail_p_value(
    z: float | FloatArray, fraction: float | FloatArray, budget: float
) -> FloatArray:
    """The smallest budget at which |z| reaches the boundary (capped at 1).

    So the interval at `budget` excludes zero exactly when this is <= `budget`. The
    mixture part keeps the tuning of `budget`. NaN z gives 1.
    """
    _, level = _boundaries(budget)
    t = np.asarray(fraction, dtype=np.float64)
    zz = np.abs(np.asarray(z, dtype=np.float64))
    q = always_valid_p(zz, t, level)  # 1 / Lambda of that mixture
    with np.errstate(all="ignore"):
        rest = q / (2.0 - q) / (1.0 - PLAN_SHARE)
        plan = np.where(
            (t > 0) & (t <= 1.0) & np.isfinite(zz),
            2.0 * special.ndtr(-zz * np.sqrt(t)) / PLAN_SHARE,
            np.inf,
        )
    return np.asarray(np.minimum(1.0, np.minimum(plan, rest)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class GuardrailCell:
    """One guardrail metric in one segment for one variant, to be checked.

    `share` is the cell's expected share of the experiment's units (1 for the whole
    population, a segment's observed share otherwise): its interval is tuned to that
    share of the planned units.
    """

    metric: str
    control: Stats
    treatment: Stats
    direction: Direction
    margin: float
    segment: Mapping[str, str] | None = None
    variant: str | None = None
    share: float = 1.0


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """A checked guardrail: relative change with its always-valid CI and the status.

    `alpha` is the error budget of each side of the interval; `share` the share of the
    planned units the interval is tuned to.
    """

    metric: str
    variant: str | None
    segment: Mapping[str, str] | None
    direction: Direction
    margin: float
    alpha: float
    estimate: float
    ci: tuple[float, float]
    p_value: float
    status: GuardrailStatus
    error: ErrorCode | None = None
    units: tuple[int, int] = field(default=(0, 0))
    share: float = 1.0

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "variant": self.variant,
            "segment": None if self.segment is None else dict(self.segment),
            "relative": interval_dict(self.estimate, self.ci),
            "p_value": clean(self.p_value),
            "status": self.status,
            "direction": self.direction,
            "margin": self.margin,
            "alpha": self.alpha,
            "share": self.share,
            "error": None if self.error is None else self.error.value,
        }


@dataclass(frozen=True, slots=True)
class GuardrailArrays:
    """Column form of guardrail checks on one batch of comparisons."""

    comparison: ComparisonBatch
    lower: FloatArray
    upper: FloatArray
    p_value: FloatArray
    status: npt.NDArray[np.int8]


def guardrail_arrays(
    control: StatsBatch,
    treatment: StatsBatch,
    *,
    harmful_up: npt.NDArray[np.bool_] | bool,
    margin: FloatArray | float,
    alpha_each: float,
    planned_units_per_variant: FloatArray | float,
) -> GuardrailArrays:
    """Check many cells at once, each side of each at budget `alpha_each` (no splitting).

    `planned_units_per_variant` is each cell's expected size (one number or a column).
    """
    comp = compare_batch(control, treatment, alpha_each)
    planned = np.asarray(planned_units_per_variant, dtype=np.float64)
    with np.errstate(all="ignore"):
        eff = 2.0 / (1.0 / comp.control_n + 1.0 / comp.treatment_n)
        t = np.where((comp.control_n > 0) & (comp.treatment_n > 0) & (planned > 0), eff, 0.0)
        t = t / np.where(planned > 0, planned, 1.0)
    mult = guardrail_multiplier(alpha_each, t)
    with np.errstate(all="ignore"):
        lower = comp.rel_estimate - mult * comp.rel_se
        upper = comp.rel_estimate + mult * comp.rel_se
    # Where the delta method reaches below -100 %, Fieller's interval stands in.
    fieller_rows = lower < -1.0
    if fieller_rows.any():
        f_lower, f_upper = comp.relative_interval(mult)
        lower = np.where(fieller_rows, f_lower, lower)
        upper = np.where(fieller_rows, f_upper, upper)
    harm = np.broadcast_to(np.asarray(harmful_up, dtype=bool), lower.shape)
    marg = np.broadcast_to(np.asarray(margin, dtype=np.float64), lower.shape)
    status = guardrail_status_codes(lower, upper, harm, marg)
    with np.errstate(all="ignore"):  # the z each interval inverts
        z = np.where(fieller_rows, comp.z, comp.rel_estimate / comp.rel_se)
    p = guardrail_p_value(z, t, alpha_each)
    return GuardrailArrays(comp, lower, upper, p, status)


def guardrail_alpha(alpha: float, family_size: int) -> float:
    """Each cell's share of alpha (Bonferroni): the error budget of each side of it."""
    return alpha / max(family_size, 1)


def check_guardrails(
    cells: Sequence[GuardrailCell],
    *,
    alpha: float = 0.05,
    planned_units_per_variant: float,
    family_size: int | None = None,
) -> tuple[GuardrailResult, ...]:
    """Check every guardrail cell; alpha is split over `family_size` (default: all cells).

    Each cell is tuned to `share` x `planned_units_per_variant` (see the module doc).
    Cells are analysed in vectorised groups of one statistics type; results come back in
    the order of `cells`.
    """
    if not 0 < alpha < 1:
        raise StatsInputError("alpha", f"must be in (0, 1), got {alpha}")
    if not planned_units_per_variant > 0:
        raise StatsInputError(
            "planned_units_per_variant", f"must be positive, got {planned_units_per_variant}"
        )
    for i, cell in enumerate(cells):
        if cell.direction not in DIRECTIONS:
            raise StatsInputError(f"cells[{i}].direction", f"unknown direction {cell.direction!r}")
        if not cell.margin >= 0:
            raise StatsInputError(f"cells[{i}].margin", f"must be >= 0, got {cell.margin}")
        if not 0 <= cell.share <= 1:
            raise StatsInputError(f"cells[{i}].share", f"must be within [0, 1], got {cell.share}")
    alpha_each = guardrail_alpha(alpha, len(cells) if family_size is None else family_size)
    groups: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        groups.setdefault(stats_kind(cell.control), []).append(i)
    results: list[GuardrailResult | None] = [None] * len(cells)
    for indices in groups.values():
        members = [cells[i] for i in indices]
        arrays = guardrail_arrays(
            StatsBatch.from_stats([c.control for c in members]),
            StatsBatch.from_stats([c.treatment for c in members]),
            harmful_up=np.array([c.direction == "decrease" for c in members]),
            margin=np.array([c.margin for c in members], dtype=np.float64),
            alpha_each=alpha_each,
            planned_units_per_variant=np.array(
                [c.share * planned_units_per_variant for c in members], dtype=np.float64
            ),
        )
        comp = arrays.comparison
        for j, (i, cell) in enumerate(zip(indices, members, strict=True)):
            results[i] = GuardrailResult(
                metric=cell.metric,
                variant=cell.variant,
                segment=cell.segment,
                direction=cell.direction,
                margin=cell.margin,
                alpha=alpha_each,
                estimate=float(comp.rel_estimate[j]),
                ci=(float(arrays.lower[j]), float(arrays.upper[j])),
                p_value=float(arrays.p_value[j]),
                status=GUARDRAIL_STATUSES[int(arrays.status[j])],
                error=ERROR_TABLE[int(comp.error[j])],
                units=(int(comp.control_n[j]), int(comp.treatment_n[j])),
                share=cell.share,
            )
    return tuple(r for r in results if r is not None)
