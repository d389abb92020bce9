"""Power and planning: units, days and minimum detectable effects per design.

The fixed-horizon sample size comes from statsmodels' `NormalIndPower` (two-sided,
equal arms) on a standardised effect: Cohen's h (arcsine) for proportions,
mde x mean / sd for means, and for ratio metrics the change over the root-mean-square
of the two arms' per-unit delta-method sds. A ratio's treatment arm is not assumed to
vary like the baseline: a multiplicative effect scales the numerators and with them
the sd, by the planned ratio change, so an increase uses the scaled sd (binomial-like
counts, whose sd grows less, then get a little more power than asked), a decrease
keeps the baseline's (its sd shrinks).
Sequential designs multiply it by an inflation factor computed from their own
boundaries: the squared ratio of the drift (expected z at the planned size) that
gives the requested power with the design's looks to the fixed-design drift
z_{1-alpha/2} + z_{power}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from service.stats._always_valid import cs_multiplier
from service.stats._boundaries import Spending, crossing_probabilities, lan_demets_boundaries
from service.stats._constants import (
    DESIGNS,
    DIRECTIONS,
    METRIC_KINDS,
    Design,
    Direction,
    MetricKind,
)
from service.stats._exceptions import StatsInputError
from service.stats._statistics import Stats

POWER_RESOLUTION = 20
"""Grid resolution for power: error in power well below 1e-4."""


def design_boundaries(
    design: Design, alpha: float, looks: int, spending: Spending | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Information fractions and z boundaries of a design with equally spaced looks."""
    if design == "fixed" or (looks <= 1 and design == "group_sequential"):
        return (1.0,), (float(special.ndtri(1.0 - alpha / 2.0)),)
    fractions = tuple((k + 1) / looks for k in range(looks))
    if design == "group_sequential":
        return fractions, lan_demets_boundaries(fractions, alpha, spending)
    return fractions, tuple(float(m) for m in cs_multiplier(alpha, np.array(fractions)))


def design_power(
    design: Design,
    drift: float,
    alpha: float = 0.05,
    looks: int = 1,
    spending: Spending | None = None,
) -> float:
    """Probability of a significant result in the effect's direction by the planned size.

    `drift` is the expected z at the planned size; looks are equally spaced (for
    `always_valid`, more frequent checks only add power).
    """
    fractions, bounds = design_boundaries(design, alpha, looks, spending)
    upper, _ = crossing_probabilities(fractions, bounds, abs(drift), resolution=POWER_RESOLUTION)
    return float(sum(upper))


@lru_cache(maxsize=256)
def _required_drift(
    design: Design, alpha: float, power: float, looks: int, spending: Spending
) -> float:
    def gap(drift: float) -> float:
        return design_power(design, drift, alpha, looks, spending) - power

    fixed = float(special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power))
    lo, hi = 0.9 * fixed, 1.6 * fixed
    while gap(hi) < 0:  # very many looks or an extreme spending function
        lo, hi = hi, 2.0 * hi
    return float(optimize.brentq(gap, lo, hi, xtol=1e-7))


def inflation_factor(
    design: Design,
    alpha: float = 0.05,
    power: float = 0.8,
    looks: int = 1,
    spending: Spending | None = None,
) -> float:
    """Sample size of the design relative to the fixed-horizon test (1 for `fixed`)."""
    if design == "fixed":
        return 1.0
    fixed = float(special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power))
    drift = _required_drift(design, alpha, power, max(looks, 1), spending or Spending())
    return (drift / fixed) ** 2


def _sd_scales(kind: MetricKind, direction: Direction) -> bool:
    """Whether the treatment arm's sd is the baseline's times 1 + mde (module doc)."""
    return kind == "ratio" and direction == "increase"


def _standardised_effect(
    kind: MetricKind, baseline_mean: float, mde: float, direction: Direction, sd: float | None
) -> float:
    target = baseline_mean * (1.0 + mde if direction == "increase" else 1.0 - mde)
    if kind == "proportion":
        if not 0 < baseline_mean < 1:
            raise StatsInputError("baseline_mean", "must be in (0, 1) for a proportion")
        if not 0 < target < 1:
            raise StatsInputError("mde", "moves the proportion outside (0, 1)")
        return abs(float(proportion_effectsize(target, baseline_mean)))
    factor = 1.0 + mde if _sd_scales(kind, direction) else 1.0
    rms_sd = _unit_sd(kind, baseline_mean, sd) * math.sqrt((1.0 + factor * factor) / 2.0)
    return abs(target - baseline_mean) / rms_sd


def _fixed_units(effect: float, alpha: float, power: float) -> float:
    """Units per arm of the fixed-horizon two-sided z-test for a standardised ``effect``.

    statsmodels' root search fails (NaN) once fewer than ~3 units per arm suffice, i.e.
    for standardised effects above ~2.5; there the closed form 2 (z_a/2 + z_b)^2 / d^2,
    which agrees with statsmodels to 0.01 units at d = 2, is used instead.
    """
    closed = 2.0 * (special.ndtri(1 - alpha / 2) + special.ndtri(power)) ** 2 / effect**2
    if closed < 3.0:
        return float(closed)
    return float(
        NormalIndPower().solve_power(
            effect_size=effect, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
        )
    )


def _unit_sd(kind: MetricKind, baseline_mean: float, sd: float | None) -> float:
    if sd is not None:
        if not (math.isfinite(sd) and sd > 0):
            raise StatsInputError("baseline_sd", f"must be positive, got {sd}")
        return sd
    if 0 < baseline_mean < 1:
        # Proportion-like: a 0/1 metric, or a ratio with one denominator per unit.
        return math.sqrt(baseline_mean * (1.0 - baseline_mean))
    raise StatsInputError("baseline_sd", f"is required for a {kind} metric outside (0, 1)")


def _baseline(
    mean: float | None, sd: float | None, stats: Stats | None
) -> tuple[float, float | None]:
    """Baseline mean and per-unit sd, from the arguments or from historical statistics.

    For ratio metrics the statistics' variance is the per-unit delta-method variance.
    """
    if stats is not None:
        if mean is None:
            mean = stats.mean
        if sd is None and stats.n >= 2 and stats.variance > 0:
            sd = math.sqrt(stats.variance)
    if mean is None:
        raise StatsInputError("baseline_mean", "is required (or give baseline_stats)")
    if not (math.isfinite(mean) and mean != 0):
        raise StatsInputError("baseline_mean", f"must be a nonzero number, got {mean}")
    return mean, sd


@dataclass(frozen=True, slots=True)
class Plan:
    """What an experiment needs: units per variant and in total, and days."""

    design: Design
    units_per_variant: int
    total_units: int
    days: int | None
    fixed_units_per_variant: int
    inflation: float
    effect_size: float
    alpha: float
    power: float
    mde: float

    def to_dict(self) -> dict[str, object]:
        return {
            "design": self.design,
            "units_per_variant": self.units_per_variant,
            "total_units": self.total_units,
            "days": self.days,
            "fixed_units_per_variant": self.fixed_units_per_variant,
            "inflation": self.inflation,
            "effect_size": self.effect_size,
            "alpha": self.alpha,
            "power": self.power,
            "mde": self.mde,
        }


def _check_common(alpha: float, power: float, design: Design, looks: int, variants: int) -> None:
    if not 0 < alpha < 1:
        raise StatsInputError("alpha", f"must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise StatsInputError("power", f"must be in (0, 1), got {power}")
    if design not in DESIGNS:
        raise StatsInputError("design", f"must be one of {DESIGNS}, got {design!r}")
    if looks < 1:
        raise StatsInputError("looks", f"must be >= 1, got {looks}")
    if variants < 2:
        raise StatsInputError("variants", f"must be >= 2, got {variants}")


def plan_experiment(
    *,
    kind: MetricKind,
    baseline_mean: float | None = None,
    mde: float,
    direction: Direction = "increase",
    alpha: float = 0.05,
    power: float = 0.8,
    design: Design = "group_sequential",
    looks: int = 1,
    baseline_sd: float | None = None,
    baseline_stats: Stats | None = None,
    variants: int = 2,
    daily_units: float | None = None,
    min_days: int = 0,
    spending: Spending | None = None,
) -> Plan:
    """Units per variant (and days at `daily_units`, never fewer than `min_days`).

    `mde` is relative (0.05 = 5%); `baseline_sd` is the per-unit sd of a mean metric
    or the per-unit delta-method sd of a ratio metric (without it, metrics with a
    mean in (0, 1) get the sd of a 0/1 metric; for ratio metrics see the module doc
    on the treatment arm's sd). `baseline_stats` (historical
    sufficient statistics, e.g. `RatioStats`) supplies the mean and the sd instead.
    `daily_units` are units entering the experiment per day, across all variants.
    """
    if kind not in METRIC_KINDS:
        raise StatsInputError("kind", f"must be one of {METRIC_KINDS}, got {kind!r}")
    if direction not in DIRECTIONS:
        raise StatsInputError("direction", f"must be one of {DIRECTIONS}, got {direction!r}")
    _check_common(alpha, power, design, looks, variants)
    if not (math.isfinite(mde) and mde > 0):
        raise StatsInputError("mde", f"must be positive, got {mde}")
    baseline_mean, baseline_sd = _baseline(baseline_mean, baseline_sd, baseline_stats)
    effect = _standardised_effect(kind, baseline_mean, mde, direction, baseline_sd)
    fixed_n = _fixed_units(effect, alpha, power)
    inflation = inflation_factor(design, alpha, power, looks, spending)
    per_variant = math.ceil(fixed_n * inflation)
    total = per_variant * variants
    days: int | None = None
    if daily_units is not None:
        if not daily_units > 0:
            raise StatsInputError("daily_units", f"must be positive, got {daily_units}")
        days = max(math.ceil(total / daily_units), min_days)
    return Plan(
        design=design,
        units_per_variant=per_variant,
        total_units=total,
        days=days,
        fixed_units_per_variant=math.ceil(fixed_n),
        inflation=inflation,
        effect_size=effect,
        alpha=alpha,
        power=power,
        mde=mde,
    )


def minimum_detectable_effect(
    *,
    kind: MetricKind,
    baseline_mean: float | None = None,
    units_per_variant: float | None = None,
    days: float | None = None,
    daily_units: float | None = None,
    direction: Direction = "increase",
    alpha: float = 0.05,
    power: float = 0.8,
    design: Design = "group_sequential",
    looks: int = 1,
    baseline_sd: float | None = None,
    baseline_stats: Stats | None = None,
    variants: int = 2,
    spending: Spending | None = None,
) -> float:
    """Smallest relative effect detectable with the given power.

    Give `units_per_variant`, or `days` with `daily_units` (all variants together).
    """
    _check_common(alpha, power, design, looks, variants)
    if units_per_variant is None:
        if days is None or daily_units is None:
            raise StatsInputError("units_per_variant", "give it, or days and daily_units")
        units_per_variant = days * daily_units / variants
    if not units_per_variant > 1:
        raise StatsInputError("units_per_variant", f"must exceed 1, got {units_per_variant}")
    baseline_mean, baseline_sd = _baseline(baseline_mean, baseline_sd, baseline_stats)
    n_fixed = units_per_variant / inflation_factor(design, alpha, power, looks, spending)
    effect = float(
        NormalIndPower().solve_power(
            effect_size=None,
            nobs1=n_fixed,
            alpha=alpha,
            power=power,
            ratio=1.0,
            alternative="two-sided",
        )
    )
    if kind == "proportion":
        if not 0 < baseline_mean < 1:
            raise StatsInputError("baseline_mean", "must be in (0, 1) for a proportion")
        phi = math.asin(math.sqrt(baseline_mean))
        angle = phi + effect / 2.0 if direction == "increase" else phi - effect / 2.0
        angle = min(max(angle, 0.0), math.pi / 2.0)
        return abs(math.sin(angle) ** 2 / baseline_mean - 1.0)
    k = effect * _unit_sd(kind, baseline_mean, baseline_sd) / abs(baseline_mean)
    if not _sd_scales(kind, direction):
        return k
    # Solve m = k sqrt((1 + (1 + m)^2) / 2) for a ratio whose sd scales with 1 + m.
    if k * k >= 2.0:
        return math.inf
    return (k * k + k * math.sqrt(4.0 - k * k)) / (2.0 - k * k)
