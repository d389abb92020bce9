"""CUPED: variance reduction of 1 - rho^2, unbiased, theta pooled over both arms."""

from __future__ import annotations

import numpy as np
import pytest

from service.stats import CupedStats, cuped_test, welch_test


def _arm(rng: np.random.Generator, n: int, rho: float, shift: float) -> CupedStats:
    x = rng.normal(5.0, 2.0, n)
    y = 10.0 + shift + rho * 3.0 * (x - 5.0) / 2.0 + rng.normal(0.0, 3.0 * np.sqrt(1 - rho**2), n)
    return CupedStats(n, y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_variance_reduction_is_one_minus_rho_squared(rho: float) -> None:
    rng = np.random.default_rng(int(rho * 10))
    c, t = _arm(rng, 20_000, rho, 0.0), _arm(rng, 20_000, rho, 0.1)
    adjusted, plain = cuped_test(c, t), welch_test(c.metric, t.metric)
    ratio = adjusted.absolute.se**2 / plain.absolute.se**2
    assert abs(ratio - (1 - rho**2)) < 0.02


def test_cuped_is_unbiased_and_its_variance_is_right_across_experiments() -> None:
    rng = np.random.default_rng(11)
    rho, sims = 0.7, 400
    adjusted, plain, ses = [], [], []
    for _ in range(sims):
        c, t = _arm(rng, 400, rho, 0.0), _arm(rng, 400, rho, 0.0)
        a = cuped_test(c, t)
        adjusted.append(a.absolute.estimate)
        ses.append(a.absolute.se)
        plain.append(welch_test(c.metric, t.metric).absolute.estimate)
    adjusted_a, plain_a = np.array(adjusted), np.array(plain)
    assert abs(adjusted_a.mean()) < 3 * adjusted_a.std() / np.sqrt(sims)
    # Empirical variance ratio of the two estimators on the same data.
    assert adjusted_a.var() / plain_a.var() == pytest.approx(1 - rho**2, abs=0.06)
    # The reported standard error matches the spread of the estimates.
    assert np.mean(ses) == pytest.approx(adjusted_a.std(), rel=0.1)


def test_theta_is_pooled_over_both_arms() -> None:
    rng = np.random.default_rng(5)
    c, t = _arm(rng, 5000, 0.6, 0.0), _arm(rng, 5000, 0.6, 0.5)
    both = c + t
    theta = ((c.cov_cross - c.sum * c.cov_sum / c.n) + (t.cov_cross - t.sum * t.cov_sum / t.n)) / (
        (c.cov_sum_sq - c.cov_sum**2 / c.n) + (t.cov_sum_sq - t.cov_sum**2 / t.n)
    )
    expected = (t.mean - c.mean) - theta * (t.cov_sum / t.n - c.cov_sum / c.n)
    assert cuped_test(c, t).absolute.estimate == pytest.approx(expected, rel=1e-9)
    assert both.n == 10_000


def test_constant_covariate_falls_back_to_plain_welch() -> None:
    c = CupedStats(3, 3.0, 5.0, 3.0, 3.0, 3.0)
    t = CupedStats(3, 6.0, 14.0, 3.0, 3.0, 6.0)
    plain = welch_test(c.metric, t.metric)
    adjusted = cuped_test(c, t)
    assert adjusted.absolute.estimate == pytest.approx(plain.absolute.estimate)
    assert adjusted.absolute.se == pytest.approx(plain.absolute.se)
