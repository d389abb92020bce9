"""Multiple-testing corrections across metrics x variants x segments.

Benjamini-Hochberg is statsmodels' `multipletests(method="fdr_bh")`. Holm is computed
here (a step-down of a dozen lines, tested equal to `multipletests(method="holm")`):
statsmodels' Holm branch calls `gc.collect()` on every call, a full garbage collection
that costs ~100 ms in a large process, on every results request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from statsmodels.stats.multitest import multipletests

from service.stats._constants import CORRECTIONS, Correction
from service.stats._exceptions import StatsInputError

_METHODS: dict[Correction, str] = {"holm": "holm", "bh": "fdr_bh"}


@dataclass(frozen=True, slots=True)
class AdjustedPValues:
    """Adjusted p-values (input order) and which hypotheses are rejected at alpha."""

    p_values: tuple[float, ...]
    reject: tuple[bool, ...]
    method: Correction
    alpha: float

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "alpha": self.alpha,
            "p_values": list(self.p_values),
            "reject": list(self.reject),
        }


def _holm(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    order = np.argsort(p, kind="mergesort")
    m = p.size
    stepped = np.minimum(np.maximum.accumulate(p[order] * np.arange(m, 0, -1)), 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return adjusted


def adjust_p_values(
    p_values: Sequence[float], method: Correction = "holm", alpha: float = 0.05
) -> AdjustedPValues:
    """Holm (family-wise error, default) or Benjamini-Hochberg (false discovery rate).

    NaN p-values (degenerate cells) count as 1. `none` returns the p-values unchanged.
    """
    if method not in CORRECTIONS:
        raise StatsInputError("correction", f"unknown correction {method!r}")
    if not 0 < alpha < 1:
        raise StatsInputError("alpha", f"must be in (0, 1), got {alpha}")
    p = np.array([1.0 if not math.isfinite(x) else min(max(x, 0.0), 1.0) for x in p_values])
    if p.size == 0:
        return AdjustedPValues((), (), method, alpha)
    if method == "none":
        adjusted, reject = p, p <= alpha
    elif method == "holm":
        adjusted = _holm(p)
        reject = adjusted <= alpha
    else:
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method=_METHODS[method])
    return AdjustedPValues(
        tuple(float(x) for x in adjusted), tuple(bool(x) for x in reject), method, alpha
    )
