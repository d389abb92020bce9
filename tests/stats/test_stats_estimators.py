"""Fixed-horizon estimators against scipy, statsmodels and gbstats known values."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportions_ztest,
)
from statsmodels.stats.proportion import (
    test_proportions_2indep as wald_test_2indep,
)

from service.stats import (
    CupedStats,
    Effect,
    ErrorCode,
    MeanStats,
    ProportionStats,
    RatioStats,
    Stats,
    StatsBatch,
    compare,
    compare_batch,
    ratio_test,
    two_proportions_test,
    welch_test,
)
from tests.stats._reference import fieller_by_roots

GB_A = MeanStats(n=3407, sum=1396.87, sum_sq=52377.9767)
GB_B = MeanStats(n=3461, sum=2422.7, sum_sq=134698.29)


def _mean_stats(x: np.ndarray) -> MeanStats:
    return MeanStats(len(x), float(x.sum()), float((x * x).sum()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(10.0, 3.0, 200 + 50 * seed)
    b = rng.normal(10.6, 4.0, 150)
    res = welch_test(_mean_stats(a), _mean_stats(b), alpha=0.05)
    ref = sps.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res.absolute.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert res.absolute.ci[0] == pytest.approx(ci.low, abs=1e-9)
    assert res.absolute.ci[1] == pytest.approx(ci.high, abs=1e-9)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    s_a, s_b = _mean_stats(a), _mean_stats(b)
    from_stats = sps.ttest_ind_from_stats(
        s_b.mean,
        math.sqrt(s_b.variance),
        s_b.n,
        s_a.mean,
        math.sqrt(s_a.variance),
        s_a.n,
        equal_var=False,
    )
    assert res.absolute.p_value == pytest.approx(from_stats.pvalue, abs=1e-9)


def _dict(comparison: Any) -> dict[str, Any]:
    """The JSON form, indexable."""
    out: dict[str, Any] = comparison.to_dict()
    return out


def test_gbstats_known_values_mean() -> None:
    # gbstats 0.8.0 TwoSidedTTest on the statistics of its own test suite.
    res = welch_test(GB_A, GB_B)
    assert res.absolute.estimate == pytest.approx(0.29, abs=1e-12)
    assert res.absolute.se == pytest.approx(0.12478363158758794, abs=1e-12)
    assert res.absolute.ci == pytest.approx((0.04537789255929012, 0.5346221074407098), abs=1e-9)
    assert res.absolute.p_value == pytest.approx(0.020158402643587037, abs=1e-9)
    assert res.relative.estimate == pytest.approx(0.7073170731707317, abs=1e-12)
    assert res.relative.se == pytest.approx(0.3787943616681428, abs=1e-12)
    # gbstats' delta-method interval, (-0.035, 1.450) with p = 0.062, contradicts the
    # significant absolute test; Fieller's inverts that test and excludes 0.
    q = sps.t.ppf(0.975, res.df)
    se_c, se_t = math.sqrt(GB_A.variance / GB_A.n), math.sqrt(GB_B.variance / GB_B.n)
    ref = fieller_by_roots(GB_B.mean, GB_A.mean, se_t, se_c, q)
    assert res.relative.ci == pytest.approx(ref, abs=1e-9)
    assert 0 < res.relative.ci[0] < res.relative.estimate < res.relative.ci[1]
    assert res.relative.p_value == res.absolute.p_value


def test_gbstats_known_values_proportion_and_ratio() -> None:
    # Estimates and standard errors equal gbstats 0.8.0; gbstats applies Welch's t
    # where we use the normal, so only the estimate/se are compared exactly.
    prop = two_proportions_test(ProportionStats(3407, 310), ProportionStats(3461, 370))
    assert prop.relative.estimate == pytest.approx(0.17492613546336597, abs=1e-12)
    assert prop.relative.se == pytest.approx(0.08590680329113809, abs=1e-12)
    ra = RatioStats(3407, 1396.87, 52377.9767, 4000, 6000, 2100.5)
    rb = RatioStats(3461, 2422.7, 134698.29, 4100, 6200, 3300.2)
    ratio = ratio_test(ra, rb)
    assert ratio.relative.estimate == pytest.approx(0.6920756806986771, abs=1e-12)
    assert ratio.relative.se == pytest.approx(0.37506909808017114, abs=1e-12)
    assert ratio.relative.p_value == ratio.absolute.p_value
    se_c, se_t = math.sqrt(ra.variance / ra.n), math.sqrt(rb.variance / rb.n)
    ref = fieller_by_roots(rb.mean, ra.mean, se_t, se_c, sps.norm.ppf(0.975))
    assert ratio.relative.ci == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize(
    ("c", "t"), [((310, 3407), (370, 3461)), ((12, 400), (25, 380)), ((14, 392), (8, 97))]
)
def test_two_proportions_equal_statsmodels_wald(c: tuple[int, int], t: tuple[int, int]) -> None:
    # One method: the p-value and the CI come from the same unpooled standard error.
    res = two_proportions_test(ProportionStats(c[1], c[0]), ProportionStats(t[1], t[0]))
    ref = wald_test_2indep(t[0], t[1], c[0], c[1], method="wald", compare="diff")
    assert res.absolute.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    lo, hi = confint_proportions_2indep(t[0], t[1], c[0], c[1], method="wald", compare="diff")
    assert res.absolute.ci == pytest.approx((lo, hi), abs=1e-9)
    significant = res.absolute.p_value < 0.05
    assert significant == (lo > 0 or hi < 0) == (res.relative.ci[0] > 0 or res.relative.ci[1] < 0)


def test_audit_example_no_longer_disagrees() -> None:
    # 14/392 vs 8/97: the pooled test said p = 0.0467 "better" beside a Wald CI of
    # [-0.011, 0.105]. Both now come from the Wald z: not significant, CI across 0.
    res = two_proportions_test(ProportionStats(392, 14), ProportionStats(97, 8))
    _, pooled_p = proportions_ztest([8, 14], [97, 392])
    assert pooled_p == pytest.approx(0.0467, abs=1e-4)  # the old verdict
    assert res.absolute.p_value > 0.05
    assert res.absolute.ci[0] < 0 < res.absolute.ci[1]
    assert res.relative.ci[0] < 0 < res.relative.ci[1]


def test_relative_interval_respects_the_scale() -> None:
    # 100 units per arm, recall 12 % vs 2 %: the delta method reaches below -100 %.
    res = two_proportions_test(ProportionStats(100, 12), ProportionStats(100, 2))
    delta_lower = res.relative.estimate - sps.norm.ppf(0.975) * res.relative.se
    assert delta_lower < -1.0
    lo, hi = res.relative.ci
    assert -1.0 <= lo < res.relative.estimate < hi < 0  # significant: it excludes 0
    se_c, se_t = res.arm_se
    ref_lo, ref_hi = fieller_by_roots(0.02, 0.12, se_t, se_c, sps.norm.ppf(0.975))
    assert ref_lo < -1.0 and lo == -1.0  # a proportion cannot fall by more than 100 %
    assert hi == pytest.approx(ref_hi, abs=1e-9)
    # A baseline not clearly above zero leaves the ratio unbounded above: null in JSON.
    tiny = two_proportions_test(ProportionStats(100, 1), ProportionStats(100, 12))
    assert tiny.relative.ci[1] == math.inf and _dict(tiny)["relative"]["ci"][1] is None
    assert tiny.relative.ci[0] > 0  # yet the (significant) rise is bounded below


def test_delta_method_ratio_variance_matches_bootstrap() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    den = rng.poisson(2.5, n) + 1.0
    num = rng.binomial(den.astype(int), rng.beta(3, 7, n)).astype(float)
    stats = RatioStats(n, num.sum(), (num**2).sum(), den.sum(), (den**2).sum(), (num * den).sum())
    idx = rng.integers(0, n, size=(2000, n))
    boot = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    delta_var = stats.variance / n
    # 2,000 bootstrap replicates estimate a variance to about 3% (one sd).
    assert delta_var == pytest.approx(boot.var(ddof=1), rel=0.1)


def _random_arm(rng: np.random.Generator, kind: str) -> Stats:
    n = int(rng.choice([0, 1, 2, 3, 50, 400]))
    x = rng.normal(rng.choice([0.0, 2.0]), rng.choice([0.0, 1.0]), n)
    if kind == "proportion":
        return ProportionStats(n, float(rng.integers(0, n + 1)) if n else 0.0)
    if kind == "mean":
        return MeanStats(n, float(x.sum()), float((x * x).sum()))
    y = rng.poisson(rng.choice([0.0, 2.0]), n).astype(float)
    if kind == "ratio":
        return RatioStats(n, x.sum(), (x * x).sum(), y.sum(), (y * y).sum(), (x * y).sum())
    return CupedStats(n, x.sum(), (x * x).sum(), y.sum(), (y * y).sum(), (x * y).sum())


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("kind", ["mean", "proportion", "ratio", "cuped"])
def test_scalar_pair_equals_the_batch_row(kind: str) -> None:
    # Two implementations (plain floats for one pair, numpy for columns): held equal,
    # degenerate cases included.
    rng = np.random.default_rng(3)
    cs = [_random_arm(rng, kind) for _ in range(200)]
    ts = [_random_arm(rng, kind) for _ in range(200)]
    batch = compare_batch(StatsBatch.from_stats(cs), StatsBatch.from_stats(ts))
    for i, (c, t) in enumerate(zip(cs, ts, strict=True)):
        one, row = compare(c, t), batch.row(i)
        assert one.error == row.error
        assert (one.control_n, one.treatment_n) == (row.control_n, row.treatment_n)
        for a, b in [
            (one.control_mean, row.control_mean),
            (one.treatment_mean, row.treatment_mean),
            (one.df, row.df),
            *zip(_flat(one.absolute), _flat(row.absolute), strict=True),
            *zip(_flat(one.relative), _flat(row.relative), strict=True),
            *zip(one.arm_se, row.arm_se, strict=True),
        ]:
            assert _same(a, b), (i, c, t, one, row)


def _flat(e: Effect) -> list[float]:
    return [e.estimate, e.se, e.ci[0], e.ci[1], e.p_value]


@pytest.mark.parametrize(
    ("control", "treatment", "code"),
    [
        (MeanStats(1, 1.0, 1.0), MeanStats(10, 5.0, 5.0), ErrorCode.INSUFFICIENT_DATA),
        (MeanStats(0, 0.0, 0.0), MeanStats(0, 0.0, 0.0), ErrorCode.INSUFFICIENT_DATA),
        (MeanStats(5, 5.0, 5.0), MeanStats(5, 10.0, 20.0), ErrorCode.ZERO_VARIANCE),
        (ProportionStats(100, 0), ProportionStats(100, 0), ErrorCode.ZERO_VARIANCE),
        (MeanStats(4, 0.0, 2.0), MeanStats(4, 2.0, 4.0), ErrorCode.ZERO_BASELINE_MEAN),
        (
            RatioStats(10, 3, 3, 0, 0, 0),
            RatioStats(10, 3, 3, 10, 10, 3),
            ErrorCode.ZERO_DENOMINATOR,
        ),
    ],
)
def test_degenerate_data_sets_error_code(control: Stats, treatment: Stats, code: ErrorCode) -> None:
    res = compare(control, treatment)
    assert res.error is code
    assert 0.0 <= res.absolute.p_value <= 1.0
    assert not math.isfinite(res.relative.se)
    d: dict[str, Any] = res.to_dict()
    assert d["error"] == code.value
    if code is ErrorCode.ZERO_BASELINE_MEAN:
        assert res.absolute.p_value < 1.0 and math.isfinite(res.absolute.se)
    else:
        assert res.absolute.p_value == 1.0 and d["absolute"]["ci"] == [None, None]


@pytest.mark.parametrize("kind", ["mean", "proportion", "ratio", "cuped"])
def test_extreme_magnitudes_never_raise(kind: str) -> None:
    rng = np.random.default_rng(21)
    for _ in range(300):
        scale = 10.0 ** rng.uniform(-300, 300)
        n = int(rng.choice([2, 3, 10**6, 10**12]))
        pairs: list[Stats] = []
        for _ in range(2):
            s, ss = rng.normal(0, 1) * scale, abs(rng.normal(0, 1)) * scale * scale
            if kind == "proportion":
                pairs.append(ProportionStats(n, float(rng.integers(0, n))))
            elif kind == "mean":
                pairs.append(MeanStats(n, s, ss))
            elif kind == "ratio":
                pairs.append(RatioStats(n, s, ss, s * 2, ss * 4, ss))
            else:
                pairs.append(CupedStats(n, s, ss, s * 2, ss * 4, ss))
        res = compare(pairs[0], pairs[1])
        assert 0.0 <= res.absolute.p_value <= 1.0 or math.isnan(res.absolute.p_value)
        json.dumps(res.to_dict(), allow_nan=False)
        batch = compare_batch(StatsBatch.from_stats(pairs[:1]), StatsBatch.from_stats(pairs[1:]))
        assert batch.row(0).error == res.error
