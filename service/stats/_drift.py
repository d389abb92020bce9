"""Distribution shift between two samples of binned counts: PSI and a homogeneity test.

* `population_stability_index(reference, current)`: sum over bins of
  (c_i - r_i) ln(c_i / r_i) with r, c the two samples' shares of each bin. It is the
  symmetrised Kullback-Leibler divergence KL(r || c) + KL(c || r) (Jeffreys); shares
  below `floor` are raised to it so that an empty bin does not make it infinite. By
  convention < 0.1 is no shift, 0.1-0.2 a moderate one and > 0.2 a large one
  (Siddiqi 2006; Yurdakul 2018).
* `homogeneity_p(reference, current)`: Pearson's chi-square test that both samples come
  from one distribution over the bins (the 2 x k contingency table, k - 1 degrees of
  freedom; bins empty in both samples are left out). PSI says how large a shift is, the
  test whether it is more than sampling noise: large samples make any shift
  significant, small ones make PSI noisy, so a decision wants both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from service.stats._exceptions import StatsInputError

__all__ = ["PSI_FLOOR", "homogeneity_p", "population_stability_index"]

PSI_FLOOR = 1e-4
"""Smallest bin share used by the PSI (an empty bin counts as this share)."""


def _counts(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise StatsInputError(name, "must be a flat sequence of finite counts >= 0")
    return arr


def _pair(reference: Sequence[float], current: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r, c = _counts("reference", reference), _counts("current", current)
    if r.shape != c.shape:
        raise StatsInputError("current", f"has {c.size} bins, the reference {r.size}")
    return r, c


def population_stability_index(
    reference: Sequence[float], current: Sequence[float], floor: float = PSI_FLOOR
) -> float:
    """PSI of two samples' counts over the same bins; NaN if either sample is empty."""
    r, c = _pair(reference, current)
    if not 0 < floor < 1:
        raise StatsInputError("floor", f"must be in (0, 1), got {floor}")
    if r.sum() <= 0 or c.sum() <= 0:
        return float("nan")
    rs = np.maximum(r / r.sum(), floor)
    cs = np.maximum(c / c.sum(), floor)
    return float(np.sum((cs - rs) * np.log(cs / rs)))


def homogeneity_p(reference: Sequence[float], current: Sequence[float]) -> float:
    """Chi-square p-value that both samples share one distribution over the bins.

    1 when either sample is empty or fewer than two bins hold any count.
    """
    r, c = _pair(reference, current)
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    nr, nc = r.sum(), c.sum()
    if nr <= 0 or nc <= 0 or r.size < 2:
        return 1.0
    total = nr + nc
    col = r + c
    er, ec = col * nr / total, col * nc / total
    statistic = float(np.sum((r - er) ** 2 / er) + np.sum((c - ec) ** 2 / ec))
    return float(special.chdtrc(r.size - 1, statistic))
