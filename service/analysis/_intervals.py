"""Confidence intervals, vectorised: Wilson for rates, Student t for means."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]


def z_value(level: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.96)."""
    return float(stats.norm.ppf(0.5 + level / 2.0))


def wilson(
    successes: npt.ArrayLike, trials: npt.ArrayLike, level: float = 0.95
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rate, lower and upper Wilson score bounds; NaN where there are no trials.

    Matches ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = z_value(level)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, np.nan)
        denom = 1.0 + z2 / n
        center = (p + z2 / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    lower = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
    upper = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return p, lower, upper


def mean_t(
    count: npt.ArrayLike, total: npt.ArrayLike, total_sq: npt.ArrayLike, level: float = 0.95
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mean and Student-t interval from sums; bounds NaN below two observations."""
    n = np.asarray(count, dtype=np.float64)
    s = np.asarray(total, dtype=np.float64)
    ss = np.asarray(total_sq, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
        var = np.maximum((ss - s * s / n) / (n - 1.0), 0.0)
        df = np.maximum(n - 1.0, 1.0)
        half = stats.t.ppf(0.5 + level / 2.0, df) * np.sqrt(var / n)
    ok = n > 1
    return mean, np.where(ok, mean - half, np.nan), np.where(ok, mean + half, np.nan)
