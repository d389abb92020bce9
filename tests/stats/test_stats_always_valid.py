"""Normal-mixture confidence sequences: formula, gbstats agreement, consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.stats import (
    MeanStats,
    always_valid_p,
    analyze_stats,
    cs_multiplier,
    mixture_tuning,
)
from tests.stats._reference import fieller_by_roots


def test_p_value_and_multiplier_agree() -> None:
    for alpha in (0.01, 0.05, 0.1):
        for t in (0.05, 0.5, 1.0, 3.0):
            m = float(cs_multiplier(alpha, t))
            assert float(always_valid_p(m, t, alpha)) == pytest.approx(alpha, rel=1e-9)
            assert float(always_valid_p(m * 1.01, t, alpha)) < alpha
            assert float(always_valid_p(m * 0.99, t, alpha)) > alpha


def test_tuning_minimises_the_width_at_the_planned_size() -> None:
    alpha = 0.05
    x_star = mixture_tuning(alpha)
    widths = [float(cs_multiplier(alpha, t)) for t in np.linspace(0.2, 5.0, 400)]
    # With x = x* t, t = 1 is (about) where the width, in standard errors, is smallest.
    best_t = np.linspace(0.2, 5.0, 400)[int(np.argmin(widths))]
    assert best_t == pytest.approx(1.0, abs=0.15)
    assert x_star == pytest.approx(-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha)))


def test_no_information_means_an_infinite_interval_and_p_of_one() -> None:
    assert math.isinf(float(cs_multiplier(0.05, 0.0)))
    assert float(always_valid_p(5.0, 0.0, 0.05)) == 1.0
    assert float(always_valid_p(math.nan, 1.0, 0.05)) == 1.0


def test_gbstats_sequential_known_values() -> None:
    # gbstats 0.8.0 SequentialTwoSidedTTest, tuning parameter 5000 (total units),
    # equal arms; our mixture tuned to 2500 units per variant is the same mixture.
    a = MeanStats(n=3400, sum=1396.87, sum_sq=52377.9767)
    b = MeanStats(n=3400, sum=2422.7, sum_sq=134698.29)
    res = analyze_stats(
        [(a, b)], direction="increase", design="always_valid", planned_units_per_variant=2500
    )
    assert res.absolute_ci == pytest.approx((-0.08270682582607525, 0.686136237590781), abs=1e-9)
    assert res.p_value == pytest.approx(0.25370372069729885, abs=1e-9)
    # gbstats gives the delta-method (-0.435, 1.904); ours is Fieller's at the same
    # multiplier, the inversion of the test behind the status.
    se_a, se_b = math.sqrt(a.variance / a.n), math.sqrt(b.variance / b.n)
    ref = fieller_by_roots(b.mean, a.mean, se_b, se_a, res.verdict.boundary)
    assert res.relative_ci == pytest.approx(ref, abs=1e-9)
    assert res.status == "inconclusive" and res.relative_ci[0] < 0 < res.relative_ci[1]


def test_scalar_helpers_equal_the_array_functions() -> None:
    from service.stats._always_valid import multiplier_at, p_value_at

    for alpha in (0.001, 0.05):
        for t in (0.0, 0.01, 0.7, 1.0, 4.0):
            assert multiplier_at(alpha, t) == pytest.approx(float(cs_multiplier(alpha, t)))
            for z in (0.0, 1.5, 3.2, math.nan):
                assert p_value_at(z, t, alpha) == pytest.approx(
                    float(always_valid_p(z, t, alpha)), rel=1e-12
                )
