"""PSI and the two-sample homogeneity test, against scipy; their behaviour under the null."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from service.stats import PSI_FLOOR, StatsInputError, homogeneity_p, population_stability_index


def test_homogeneity_equals_scipy_chi2_contingency() -> None:
    reference = [120, 340, 90, 15, 430]
    current = [30, 70, 40, 9, 60]
    expected = sps.chi2_contingency(np.array([reference, current]), correction=False).pvalue
    assert homogeneity_p(reference, current) == pytest.approx(expected, rel=1e-10)


def test_homogeneity_leaves_out_bins_empty_in_both() -> None:
    with_empty = homogeneity_p([10, 0, 30, 5], [12, 0, 20, 9])
    without = sps.chi2_contingency(np.array([[10, 30, 5], [12, 20, 9]]), correction=False).pvalue
    assert with_empty == pytest.approx(without, rel=1e-10)


def test_psi_is_the_symmetrised_kl_divergence() -> None:
    reference = np.array([200.0, 300, 250, 150, 100])
    current = np.array([150.0, 280, 260, 190, 120])
    r, c = reference / reference.sum(), current / current.sum()
    jeffreys = sps.entropy(r, c) + sps.entropy(c, r)
    assert population_stability_index(list(reference), list(current)) == pytest.approx(
        jeffreys, rel=1e-12
    )


def test_psi_floors_empty_bins_instead_of_going_infinite() -> None:
    psi = population_stability_index([100, 100, 0], [100, 100, 50])
    r = np.maximum(np.array([0.5, 0.5, 0.0]), PSI_FLOOR)
    c = np.array([0.4, 0.4, 0.2])
    assert psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-12)
    assert np.isfinite(psi)


def test_known_shift_and_no_shift() -> None:
    assert population_stability_index([10, 20, 30], [10, 20, 30]) == 0.0
    assert population_stability_index([10, 20, 30], [20, 40, 60]) == pytest.approx(0.0, abs=1e-15)
    assert population_stability_index([50, 50], [90, 10]) > 0.2
    assert np.isnan(population_stability_index([0, 0], [1, 2]))
    assert homogeneity_p([0, 0], [1, 2]) == 1.0


def test_homogeneity_p_is_uniform_under_the_null() -> None:
    """Same distribution, 10 bins, 2,000 repetitions: about 5 % below 0.05."""
    rng = np.random.default_rng(7)
    shares = rng.dirichlet(np.ones(10))
    ps = np.array(
        [
            homogeneity_p(list(rng.multinomial(5000, shares)), list(rng.multinomial(800, shares)))
            for _ in range(2000)
        ]
    )
    assert 0.035 < np.mean(ps < 0.05) < 0.065
    assert sps.kstest(ps, "uniform").pvalue > 0.001


@pytest.mark.parametrize(
    ("reference", "current", "field"),
    [
        ([1, 2], [1, 2, 3], "current"),
        ([1, -2], [1, 2], "reference"),
        ([1, np.nan], [1, 2], "reference"),
    ],
)
def test_bad_input_names_the_field(
    reference: list[float], current: list[float], field: str
) -> None:
    with pytest.raises(StatsInputError) as caught:
        population_stability_index(list(reference), list(current))
    assert caught.value.field == field
