"""Multiple-testing corrections across metrics x variants x segments (statsmodels)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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
    else:
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method=_METHODS[method])
    return AdjustedPValues(
        tuple(float(x) for x in adjusted), tuple(bool(x) for x in reject), method, alpha
    )
