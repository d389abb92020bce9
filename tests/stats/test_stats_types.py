from __future__ import annotations

import math

import numpy as np
import pytest

import service.stats as st
from service.stats import CupedStats, MeanStats, ProportionStats, RatioStats, StatsBatch


def test_public_face_is_complete() -> None:
    # (ruff's RUF022 keeps ``__all__`` sorted)
    public = {n for n in dir(st) if not n.startswith("_") and n != "annotations"}
    assert public == set(st.__all__)


def test_mean_stats_merge_and_moments() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, 1000)
    a = MeanStats(600, float(x[:600].sum()), float((x[:600] ** 2).sum()))
    b = MeanStats(400, float(x[600:].sum()), float((x[600:] ** 2).sum()))
    merged = a + b
    assert merged.n == 1000
    assert merged.mean == pytest.approx(x.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(x.var(ddof=1), rel=1e-9)


def test_known_gbstats_statistic() -> None:
    s = MeanStats(n=3407, sum=1396.87, sum_sq=52377.9767)
    assert s.mean == pytest.approx(0.41000000, abs=1e-8)
    assert s.variance == pytest.approx(15.21, abs=1e-9)


def test_proportion_and_ratio_and_cuped_merge() -> None:
    p = ProportionStats(10, 3) + ProportionStats(30, 5)
    assert (p.n, p.sum, p.sum_sq) == (40, 8, 8)
    assert p.variance == pytest.approx(0.2 * 0.8)
    r = RatioStats(2, 3, 5, 4, 8, 6) + RatioStats(1, 1, 1, 2, 4, 2)
    assert r == RatioStats(3, 4, 6, 6, 12, 8)
    assert r.mean == pytest.approx(4 / 6)
    c = CupedStats(2, 1, 1, 2, 2, 1) + CupedStats(2, 1, 1, 2, 2, 1)
    assert c.metric == MeanStats(4, 2, 2)
    assert c.covariate == MeanStats(4, 4, 4)


def test_ratio_variance_is_the_delta_method_on_units() -> None:
    rng = np.random.default_rng(2)
    y = rng.poisson(3, 500) + 1.0
    x = rng.binomial(y.astype(int), 0.3).astype(float)
    r = RatioStats(500, x.sum(), (x * x).sum(), y.sum(), (y * y).sum(), (x * y).sum())
    ratio = x.sum() / y.sum()
    linear = (x - ratio * y) / y.mean()
    assert r.variance == pytest.approx(linear.var(ddof=1), rel=1e-9)


@pytest.mark.parametrize(
    "stats",
    [
        MeanStats(0, 0.0, 0.0),
        MeanStats(1, 5.0, 25.0),
        ProportionStats(0, 0),
        RatioStats(0, 0, 0, 0, 0, 0),
        RatioStats(5, 1, 1, 0, 0, 0),
        CupedStats(1, 1, 1, 1, 1, 1),
    ],
)
def test_degenerate_statistics_do_not_raise(
    stats: MeanStats | ProportionStats | RatioStats | CupedStats,
) -> None:
    assert math.isfinite(stats.mean)
    assert stats.variance == 0.0


def test_constant_data_has_zero_not_negative_variance() -> None:
    s = MeanStats(3, 0.3, 0.03)  # three units of 0.1: cancellation-prone
    assert s.variance == 0.0


def test_batch_from_stats_matches_columns() -> None:
    stats = [RatioStats(3, 4, 6, 6, 12, 8), RatioStats(2, 3, 5, 4, 8, 6)]
    b = StatsBatch.from_stats(stats)
    assert b.kind == "ratio"
    assert list(b.n) == [3, 2]
    assert list(b.cross_sum) == [8, 6]
    with pytest.raises(ValueError, match="mixed"):
        StatsBatch.from_stats([MeanStats(1, 1, 1), ProportionStats(1, 1)])
