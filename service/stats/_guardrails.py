"""Guardrails: direction-aware non-inferiority on always-valid CIs of the relative change.

With relative CI [lo, hi], margin m and the harmful side being down for
`increase` metrics (up for `decrease` metrics), in this order:

* `breached`: the CI lies entirely beyond the margin on the harmful side;
* `warning`: the CI lies entirely on the harmful side of zero;
* `ok`: non-inferiority shown, the CI lies entirely on the good side of the margin;
* `inconclusive`: anything else.

Guardrails are watched continuously, so the CI is the normal-mixture confidence
sequence. To keep the family-wise false-alarm rate at most alpha over every guardrail x
segment x variant cell and every look, `check_guardrails` gives each cell alpha / m
(Bonferroni over the m cells): each cell's sequence excludes the truth at any time
with probability at most alpha / m, and a false `warning` or `breached` needs that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from service.stats._always_valid import always_valid_p, cs_multiplier
from service.stats._batch import FloatArray, StatsBatch, stats_kind
from service.stats._constants import DIRECTIONS, Direction, ErrorCode, GuardrailStatus
from service.stats._estimators import ERROR_TABLE, ComparisonBatch, compare_batch
from service.stats._exceptions import StatsInputError
from service.stats._results import clean
from service.stats._statistics import Stats

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


@dataclass(frozen=True, slots=True)
class GuardrailCell:
    """One guardrail metric in one segment for one variant, to be checked."""

    metric: str
    control: Stats
    treatment: Stats
    direction: Direction
    margin: float
    segment: Mapping[str, str] | None = None
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """A checked guardrail: relative change with its always-valid CI and the status."""

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

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "variant": self.variant,
            "segment": None if self.segment is None else dict(self.segment),
            "relative": {
                "estimate": clean(self.estimate),
                "ci": [clean(self.ci[0]), clean(self.ci[1])],
            },
            "p_value": clean(self.p_value),
            "status": self.status,
            "direction": self.direction,
            "margin": self.margin,
            "alpha": self.alpha,
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
    planned_units_per_variant: float,
) -> GuardrailArrays:
    """Check many cells at once, each at level `alpha_each` (no further splitting)."""
    comp = compare_batch(control, treatment, alpha_each, pooled=False)
    with np.errstate(all="ignore"):
        eff = 2.0 / (1.0 / comp.control_n + 1.0 / comp.treatment_n)
    t = (
        np.where((comp.control_n > 0) & (comp.treatment_n > 0), eff, 0.0)
        / planned_units_per_variant
    )
    mult = cs_multiplier(alpha_each, t)
    lower = comp.rel_estimate - mult * comp.rel_se
    upper = comp.rel_estimate + mult * comp.rel_se
    harm = np.broadcast_to(np.asarray(harmful_up, dtype=bool), lower.shape)
    marg = np.broadcast_to(np.asarray(margin, dtype=np.float64), lower.shape)
    status = guardrail_status_codes(lower, upper, harm, marg)
    p = always_valid_p(comp.z, t, alpha_each)
    return GuardrailArrays(comp, lower, upper, p, status)


def guardrail_alpha(alpha: float, family_size: int) -> float:
    """Bonferroni share of alpha for each guardrail cell of the family."""
    return alpha / max(family_size, 1)


def check_guardrails(
    cells: Sequence[GuardrailCell],
    *,
    alpha: float = 0.05,
    planned_units_per_variant: float,
    family_size: int | None = None,
) -> tuple[GuardrailResult, ...]:
    """Check every guardrail cell; alpha is split over `family_size` (default: all cells).

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
            planned_units_per_variant=planned_units_per_variant,
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
            )
    return tuple(r for r in results if r is not None)
