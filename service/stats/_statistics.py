"""Sufficient statistics: frozen, mergeable with `+`, never raising on degenerate data.

Every type describes one arm (one variant, one segment, one metric) as per-unit totals,
so hour buckets, segments and shards add up. `mean` and `variance` are per-unit
quantities; the variance of the arm's mean is `variance / n`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _sample_variance(n: int, total: float, total_sq: float) -> float:
    if n < 2:
        return 0.0
    # Cancellation can leave a tiny negative number for constant data.
    return max((total_sq - total * total / n) / (n - 1), 0.0)


def _sample_covariance(n: int, sum_x: float, sum_y: float, sum_xy: float) -> float:
    if n < 2:
        return 0.0
    return (sum_xy - sum_x * sum_y / n) / (n - 1)


@dataclass(frozen=True, slots=True)
class MeanStats:
    """A unit-level continuous metric: count, sum and sum of squares."""

    n: int
    sum: float
    sum_sq: float

    def __add__(self, other: MeanStats) -> MeanStats:
        return MeanStats(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); 0 when n < 2."""
        return _sample_variance(self.n, self.sum, self.sum_sq)


@dataclass(frozen=True, slots=True)
class ProportionStats:
    """A 0/1 unit-level metric: count and number of ones."""

    n: int
    sum: float

    def __add__(self, other: ProportionStats) -> ProportionStats:
        return ProportionStats(self.n + other.n, self.sum + other.sum)

    @property
    def sum_sq(self) -> float:
        return self.sum

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Bernoulli variance p(1 - p)."""
        p = self.mean
        return max(p * (1.0 - p), 0.0)


@dataclass(frozen=True, slots=True)
class RatioStats:
    """A ratio of per-unit totals (sum of numerators / sum of denominators).

    `cross_sum` is the sum over units of numerator x denominator; the delta method
    turns the five sums into the variance of the ratio across units.
    """

    n: int
    num_sum: float
    num_sum_sq: float
    den_sum: float
    den_sum_sq: float
    cross_sum: float

    def __add__(self, other: RatioStats) -> RatioStats:
        return RatioStats(
            self.n + other.n,
            self.num_sum + other.num_sum,
            self.num_sum_sq + other.num_sum_sq,
            self.den_sum + other.den_sum,
            self.den_sum_sq + other.den_sum_sq,
            self.cross_sum + other.cross_sum,
        )

    @property
    def mean(self) -> float:
        """The ratio itself; 0 when the denominator total is zero."""
        return self.num_sum / self.den_sum if self.den_sum != 0 else 0.0

    @property
    def num_variance(self) -> float:
        return _sample_variance(self.n, self.num_sum, self.num_sum_sq)

    @property
    def den_variance(self) -> float:
        return _sample_variance(self.n, self.den_sum, self.den_sum_sq)

    @property
    def covariance(self) -> float:
        return _sample_covariance(self.n, self.num_sum, self.den_sum, self.cross_sum)

    @property
    def variance(self) -> float:
        """Per-unit delta-method variance of the ratio: Var(X - R Y) / E[Y]^2."""
        if self.n < 2 or self.den_sum == 0:
            return 0.0
        r = self.num_sum / self.den_sum
        den_mean = self.den_sum / self.n
        v = self.num_variance - 2.0 * r * self.covariance + r * r * self.den_variance
        scale = den_mean * den_mean
        if scale == 0.0:  # underflow: IEEE semantics, as numpy gives, instead of raising
            return math.inf if v > 0 else 0.0
        return max(v / scale, 0.0)


@dataclass(frozen=True, slots=True)
class CupedStats:
    """A continuous metric with one pre-experiment covariate (CUPED).

    `cov_sum`, `cov_sum_sq` are the covariate's sums and `cov_cross` is the sum over
    units of metric x covariate.
    """

    n: int
    sum: float
    sum_sq: float
    cov_sum: float
    cov_sum_sq: float
    cov_cross: float

    def __add__(self, other: CupedStats) -> CupedStats:
        return CupedStats(
            self.n + other.n,
            self.sum + other.sum,
            self.sum_sq + other.sum_sq,
            self.cov_sum + other.cov_sum,
            self.cov_sum_sq + other.cov_sum_sq,
            self.cov_cross + other.cov_cross,
        )

    @property
    def metric(self) -> MeanStats:
        return MeanStats(self.n, self.sum, self.sum_sq)

    @property
    def covariate(self) -> MeanStats:
        return MeanStats(self.n, self.cov_sum, self.cov_sum_sq)

    @property
    def mean(self) -> float:
        return self.metric.mean

    @property
    def variance(self) -> float:
        return self.metric.variance

    @property
    def covariance(self) -> float:
        """Sample covariance of metric and covariate."""
        return _sample_covariance(self.n, self.sum, self.cov_sum, self.cov_cross)


Stats = MeanStats | ProportionStats | RatioStats | CupedStats
