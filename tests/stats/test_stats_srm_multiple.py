"""SRM (chi-square and the sequential Dirichlet-multinomial test) and multiple testing."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from service.stats import (
    StatsInputError,
    adjust_p_values,
    chi_square_p,
    mixture_tuning,
    sequential_srm_p,
    srm_check,
    srm_concentration,
)


def test_chi_square_equals_scipy() -> None:
    counts, weights = [10_234, 10_110, 5_120], [40, 40, 20]
    expected = np.array(weights) / 100 * sum(counts)
    assert chi_square_p(counts, weights) == pytest.approx(
        sps.chisquare(counts, expected).pvalue, abs=1e-12
    )


def test_clear_mismatch_is_flagged_by_both() -> None:
    res = srm_check([10_000, 10_800], [50, 50])
    assert res.chi_square_p < 0.001 and res.sequential_p < 0.001
    assert not res.ok
    assert res.to_dict()["ok"] is False


def test_balanced_split_is_clean() -> None:
    res = srm_check([10_021, 9_987], [1, 1])
    assert res.ok and res.sequential_p > 0.5 and res.chi_square_p > 0.5


def test_sequential_srm_is_safe_under_continuous_checking() -> None:
    # 200 A/A experiments of 20,000 units, checked after every 200 units (100 checks),
    # flagged at 0.05 to make any excess visible. Chi-square peeking is not safe.
    rng = np.random.default_rng(9)
    sims, checks, block = 200, 100, 200
    treated = rng.binomial(block, 0.5, size=(sims, checks)).cumsum(axis=1)
    total = block * np.arange(1, checks + 1)
    seq_flag = np.zeros(sims, dtype=bool)
    chi_flag = np.zeros(sims, dtype=bool)
    for i in range(sims):
        for k in range(checks):
            counts = [int(total[k] - treated[i, k]), int(treated[i, k])]
            seq_flag[i] |= sequential_srm_p(counts, [1, 1]) < 0.05
            chi_flag[i] |= chi_square_p(counts, [1, 1]) < 0.05
    assert seq_flag.mean() <= 0.05
    assert chi_flag.mean() > 0.15


def test_sequential_srm_finds_a_small_real_imbalance() -> None:
    rng = np.random.default_rng(10)
    treated = rng.binomial(200_000, 0.49)  # a 49/51 split
    assert sequential_srm_p([200_000 - treated, treated], [1, 1]) < 0.001


@pytest.mark.parametrize(("method", "sm"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_corrections_equal_statsmodels(method: Literal["holm", "bh"], sm: str) -> None:
    p = [0.001, 0.02, 0.03, 0.2, 0.04, 0.5, 0.0101]
    res = adjust_p_values(p, method, 0.05)
    reject, adjusted, _, _ = multipletests(p, alpha=0.05, method=sm)
    assert res.p_values == pytest.approx(list(adjusted), abs=1e-12)
    assert res.reject == tuple(bool(r) for r in reject)


@pytest.mark.parametrize("seed", range(5))
def test_holm_equals_statsmodels_on_random_families(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 400))
    p = np.concatenate([rng.uniform(0, 0.01, m // 4), rng.uniform(0, 1, m - m // 4)])
    p[: m // 10] = p[0]  # ties
    rng.shuffle(p)
    res = adjust_p_values(list(p), "holm", 0.05)
    reject, adjusted, _, _ = multipletests(p, alpha=0.05, method="holm")
    assert res.p_values == pytest.approx(list(adjusted), abs=1e-12)
    assert res.reject == tuple(bool(r) for r in reject)


def test_no_correction_and_degenerate_p_values() -> None:
    res = adjust_p_values([0.01, float("nan")], "none")
    assert res.p_values == (0.01, 1.0) and res.reject == (True, False)
    assert adjust_p_values([], "holm").p_values == ()
    with pytest.raises(StatsInputError) as err:
        adjust_p_values([0.1], "bonferonni")  # type: ignore[arg-type]
    assert err.value.field == "correction"


def test_srm_input_errors_name_the_field() -> None:
    with pytest.raises(StatsInputError) as err:
        srm_check([1, 2], [1, 0])
    assert err.value.field == "weights"
    with pytest.raises(StatsInputError) as err:
        srm_check([-1, 2], [1, 1])
    assert err.value.field == "counts"


def test_concentration_tuned_to_the_plan() -> None:
    x_star = mixture_tuning(0.001)
    assert srm_concentration(200_000) == pytest.approx(200_000 / x_star - 1)
    assert srm_concentration(None) == srm_concentration(0.0) == 1000.0


def _flagged(treated: np.ndarray, block: int, concentration: float, threshold: float) -> float:
    total = block * np.arange(1, treated.shape[1] + 1)
    flags = 0
    for row in treated:
        for k in range(len(total)):
            counts = [int(total[k] - row[k]), int(row[k])]
            if sequential_srm_p(counts, [1, 1], concentration) < threshold:
                flags += 1
                break
    return flags / int(treated.shape[0])


def test_tuned_sequential_srm_finds_a_small_mismatch_by_the_planned_size() -> None:
    # 50.5 / 49.5 checked every 4,000 units up to the planned 200,000 (validate_stats:
    # 68 % tuned, 63 % with the default; chi-square once at 200,000: 89 %).
    rng = np.random.default_rng(12)
    treated = rng.binomial(4000, 0.505, size=(400, 50)).cumsum(axis=1)
    tuned = _flagged(treated, 4000, srm_concentration(200_000), 0.001)
    default = _flagged(treated, 4000, 1000.0, 0.001)
    assert tuned > default + 0.02 and tuned >= 0.6


def test_tuned_sequential_srm_stays_safe_under_continuous_checking() -> None:
    # A/A, 200 checks up to the plan, flagged at 0.05 to make any excess visible.
    rng = np.random.default_rng(13)
    treated = rng.binomial(1000, 0.5, size=(300, 200)).cumsum(axis=1)
    assert _flagged(treated, 1000, srm_concentration(200_000), 0.05) <= 0.05
