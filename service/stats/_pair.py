"""The fixed-horizon comparison of one pair of arms in plain floats.

Same formulas and degenerate-data rules as `compare_batch` (tests hold the two equal),
without numpy's per-call overhead: one pair costs microseconds, which is what callers
building a results page row by row need.
"""

from __future__ import annotations

import math

from scipy import special

from service.stats._constants import FAILED, ErrorCode
from service.stats._intervals import fieller_pair
from service.stats._results import NAN, Comparison, Effect
from service.stats._statistics import CupedStats, ProportionStats, RatioStats, Stats


def _cuped(c: CupedStats, t: CupedStats) -> tuple[float, float, float, float]:
    def centred(s: CupedStats) -> tuple[float, float]:
        if s.n <= 0:
            return 0.0, 0.0
        sxy = s.cov_cross - s.sum * s.cov_sum / s.n
        sxx = s.cov_sum_sq - s.cov_sum * s.cov_sum / s.n
        return sxy, max(sxx, 0.0)

    sxy_c, sxx_c = centred(c)
    sxy_t, sxx_t = centred(t)
    sxx = sxx_c + sxx_t
    theta = (sxy_c + sxy_t) / sxx if sxx > 0 else 0.0
    n_all = c.n + t.n
    x_pooled = (c.cov_sum + t.cov_sum) / n_all if n_all > 0 else 0.0

    def adjusted(s: CupedStats) -> tuple[float, float]:
        x_mean = s.cov_sum / s.n if s.n > 0 else 0.0
        vx, cxy = s.covariate.variance, s.covariance
        var = max(s.variance + theta * theta * vx - 2.0 * theta * cxy, 0.0)
        return s.mean - theta * (x_mean - x_pooled), var

    mc, vc = adjusted(c)
    mt, vt = adjusted(t)
    return mc, vc, mt, vt


def compare_pair(control: Stats, treatment: Stats, alpha: float) -> Comparison:
    """Scalar twin of `compare_batch` for one (control, treatment) pair."""
    if type(control) is not type(treatment):
        raise ValueError(
            f"control is {type(control).__name__} but treatment is {type(treatment).__name__}"
        )
    nc, nt = control.n, treatment.n
    if isinstance(control, CupedStats) and isinstance(treatment, CupedStats):
        mc, vc, mt, vt = _cuped(control, treatment)
    else:
        mc, vc = control.mean, control.variance
        mt, vt = treatment.mean, treatment.variance
    se2c = vc / nc if nc > 0 else 0.0
    se2t = vt / nt if nt > 0 else 0.0
    abs_est = mt - mc
    abs_se = math.sqrt(se2c + se2t)
    df = math.inf
    if not isinstance(control, ProportionStats | RatioStats) and nc >= 2 and nt >= 2:
        den = se2c * se2c / (nc - 1.0) + se2t * se2t / (nt - 1.0)
        if den > 0:
            df = (se2c + se2t) * (se2c + se2t) / den

    error: ErrorCode | None = None
    if nc < 2 or nt < 2:
        error = ErrorCode.INSUFFICIENT_DATA
    elif (
        isinstance(control, RatioStats)
        and isinstance(treatment, RatioStats)
        and (control.den_sum == 0 or treatment.den_sum == 0)
    ):
        error = ErrorCode.ZERO_DENOMINATOR
    elif not abs_se > 0:
        error = ErrorCode.ZERO_VARIANCE
    elif mc == 0:
        error = ErrorCode.ZERO_BASELINE_MEAN
    failed = error in FAILED

    abs_p = 1.0
    if not failed and abs_se > 0:
        abs_p = float(2.0 * special.stdtr(df, -abs(abs_est / abs_se)))
    if failed:
        abs_se = NAN

    rel_est = mt / mc - 1.0 if mc != 0 else NAN
    rel_se = NAN
    if not failed and mc != 0:
        # Products, not powers: Python's float ** raises on overflow, * gives inf.
        ratio = mt / mc
        scale = mc * mc
        rel_se = math.sqrt((se2t + ratio * ratio * se2c) / scale) if scale > 0 else NAN
        if not rel_se > 0:  # e.g. a constant zero treatment: the delta method says nothing
            rel_se = NAN
    q = float(special.stdtrit(df, 1.0 - alpha / 2.0))
    nonnegative = isinstance(control, ProportionStats)
    se_c, se_t = math.sqrt(se2c), math.sqrt(se2t)
    rel_ci, rel_p = (NAN, NAN), 1.0
    if not failed and mc != 0:
        rel_ci, rel_p = fieller_pair(mt, mc, se_t, se_c, q, nonnegative), abs_p
    return Comparison(
        control_n=int(nc),
        control_mean=mc,
        treatment_n=int(nt),
        treatment_mean=mt,
        absolute=Effect(abs_est, abs_se, (abs_est - q * abs_se, abs_est + q * abs_se), abs_p),
        relative=Effect(rel_est, rel_se, rel_ci, rel_p),
        df=df,
        alpha=alpha,
        error=error,
        arm_se=(se_c, se_t),
        nonnegative=nonnegative,
    )
