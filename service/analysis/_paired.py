"""Paired comparisons: baseline and candidate answered the same inputs.

Every metric is a ratio of per-record sums (a mean or proportion has denominator 1),
so one estimator covers all kinds. With R = sum(num) / sum(den) per arm, the
influence of record i on an arm's ratio is (num_i - R den_i) / mean(den); the
difference R_t - R_c has influence u_i = infl_t,i - infl_c,i and standard error
sd(u) / sqrt(n): the correlation between the arms cancels in the per-record
difference, which is what makes paired data powerful. The relative change
R_t / R_c - 1 uses the delta method on the same influences.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from service.analysis._frame import FloatArray
from service.stats import Comparison, Effect, ErrorCode

NAN = float("nan")


def _effect(estimate: float, se: float, alpha: float) -> Effect:
    if not (math.isfinite(se) and se > 0 and math.isfinite(estimate)):
        return Effect(estimate, se, (NAN, NAN), 1.0)
    z = float(stats.norm.isf(alpha / 2.0))
    p = float(2.0 * stats.norm.sf(abs(estimate) / se))
    return Effect(estimate, se, (estimate - z * se, estimate + z * se), p)


def paired_comparison(
    num_c: FloatArray, den_c: FloatArray, num_t: FloatArray, den_t: FloatArray, alpha: float
) -> Comparison:
    """Candidate (t) against baseline (c) on the same n records, as a stats `Comparison`.

    Degenerate data never raises: the result's ``error`` is set and p-values are 1.
    """
    n = int(num_c.shape[0])
    sum_c, sum_t = float(den_c.sum()), float(den_t.sum())
    r_c = float(num_c.sum()) / sum_c if sum_c else NAN
    r_t = float(num_t.sum()) / sum_t if sum_t else NAN
    error: ErrorCode | None = None
    abs_se = rel_se = NAN
    if n < 2:
        error = ErrorCode.INSUFFICIENT_DATA
    elif sum_c == 0 or sum_t == 0:
        error = ErrorCode.ZERO_DENOMINATOR
    else:
        infl_c = (num_c - r_c * den_c) / (sum_c / n)
        infl_t = (num_t - r_t * den_t) / (sum_t / n)
        abs_se = float(np.std(infl_t - infl_c, ddof=1)) / math.sqrt(n)
        if abs_se == 0:
            error = ErrorCode.ZERO_VARIANCE
        if r_c != 0:
            rel = infl_t / r_c - (r_t / (r_c * r_c)) * infl_c
            rel_se = float(np.std(rel, ddof=1)) / math.sqrt(n)
        elif error is None:
            error = ErrorCode.ZERO_BASELINE_MEAN
    rel_est = r_t / r_c - 1.0 if r_c and math.isfinite(r_c) else NAN
    absolute = _effect(r_t - r_c, abs_se if error is None else NAN, alpha)
    relative = _effect(rel_est, rel_se if error is None else NAN, alpha)
    return Comparison(
        control_n=n,
        control_mean=r_c,
        treatment_n=n,
        treatment_mean=r_t,
        absolute=absolute,
        relative=relative,
        df=math.inf,
        alpha=alpha,
        error=error,
    )
