"""Intervals around an effect at a multiplier q (critical value) of its standard error.

* Absolute effect: estimate +/- q se, the inversion of the z (or Welch t) test that
  gives the verdict, so the two always agree.
* Relative effect treatment/control - 1: Fieller's interval, the set of ratios rho
  the same test does not reject,

      |mean_t - rho mean_c| < q sqrt(se_t^2 + rho^2 se_c^2),

  (Fieller 1954; Franz 2007). At rho = 1 this is the absolute test, so the relative
  interval excludes 0 exactly when the verdict is significant (the delta-method
  interval disagrees with it in ~8 % of small comparisons), and it respects the
  scale where the delta method reaches below -100 %. For metrics that cannot be
  negative (proportions) the set is cut at -100 %. When the baseline mean is itself
  not clearly away from zero the set is unbounded: its upper end is infinite (null
  in JSON); a metric that can be negative then gets (-inf, inf).
* Guardrails keep the delta-method interval (`_guardrails`): their status is read
  from that interval against a relative margin, there is no separate test to
  disagree with, and it is the more powerful non-inferiority statistic for a harm.
  Where it reaches below -100 % Fieller's replaces it.

`fieller` works on arrays; `fieller_pair` is its plain-float twin for one row (tests
hold them equal).
"""

from __future__ import annotations

import math

import numpy as np

from service.stats._batch import FloatArray
from service.stats._constants import FAILED
from service.stats._results import NAN, Comparison

_INF = math.inf


def interval(estimate: float, se: float, mult: float) -> tuple[float, float]:
    """estimate +/- mult se; NaN bounds when either is not finite."""
    if not (math.isfinite(se) and math.isfinite(mult)):
        return (NAN, NAN)
    return (estimate - mult * se, estimate + mult * se)


def fieller(
    treatment_mean: FloatArray | float,
    control_mean: FloatArray | float,
    treatment_se: FloatArray | float,
    control_se: FloatArray | float,
    mult: FloatArray | float,
    nonnegative: bool,
) -> tuple[FloatArray, FloatArray]:
    """Fieller's interval for treatment/control - 1 (module doc), elementwise.

    NaN standard errors or multiplier give NaN bounds.
    """
    mt = np.asarray(treatment_mean, dtype=np.float64)
    mc = np.asarray(control_mean, dtype=np.float64)
    q2 = np.asarray(mult, dtype=np.float64) ** 2
    vt = np.asarray(treatment_se, dtype=np.float64) ** 2
    vc = np.asarray(control_se, dtype=np.float64) ** 2
    with np.errstate(all="ignore"):
        a = mc * mc - q2 * vc
        b = mt * mc
        root = np.sqrt(q2 * (vc * mt * mt + vt * a))  # sqrt(b^2 - a c), c = mt^2 - q2 vt
        r1, r2 = (b - root) / a, (b + root) / a
        lo, hi = np.minimum(r1, r2), np.maximum(r1, r2)
        bounded = a > 0
        if nonnegative:
            # Outside the roots when a < 0: of that, [hi, inf) is all a ratio >= 0 keeps
            # when lo < 0 <= hi; otherwise the hull of what is left is [0, inf).
            ray = (a < 0) & (root > 0) & (lo < 0) & (hi >= 0)
            lower = np.where(bounded, np.maximum(lo, 0.0), np.where(ray, hi, 0.0)) - 1.0
        else:
            lower = np.where(bounded, lo, -_INF) - 1.0
        upper = np.where(bounded, hi - 1.0, _INF)
        usable = np.isfinite(q2) & np.isfinite(vt) & np.isfinite(vc) & (mc != 0)
    return (
        np.asarray(np.where(usable, lower, NAN), dtype=np.float64),
        np.asarray(np.where(usable, upper, NAN), dtype=np.float64),
    )


def fieller_pair(
    treatment_mean: float,
    control_mean: float,
    treatment_se: float,
    control_se: float,
    mult: float,
    nonnegative: bool,
) -> tuple[float, float]:
    """`fieller` for one pair, in plain floats."""
    q2 = mult * mult
    vt, vc = treatment_se * treatment_se, control_se * control_se
    if not (math.isfinite(q2) and math.isfinite(vt) and math.isfinite(vc) and control_mean != 0):
        return (NAN, NAN)
    mt, mc = treatment_mean, control_mean
    a = mc * mc - q2 * vc
    b = mt * mc
    inner = q2 * (vc * mt * mt + vt * a)
    root = math.sqrt(inner) if inner > 0 else (0.0 if inner == 0 else NAN)
    if a > 0:
        lo, hi = (b - root) / a, (b + root) / a
        return (max(lo, 0.0) - 1.0 if nonnegative else lo - 1.0, hi - 1.0)
    if not nonnegative:
        return (-_INF, _INF)
    if a < 0 and root > 0:
        lo, hi = sorted(((b - root) / a, (b + root) / a))
        if lo < 0 <= hi:
            return (hi - 1.0, _INF)
    return (-1.0, _INF)


def relative_interval(comp: Comparison, mult: float) -> tuple[float, float]:
    """Fieller's relative interval of one comparison at `mult` standard errors.

    Comparisons built without the arms' standard errors get the delta-method one.
    """
    if comp.error in FAILED or not math.isfinite(comp.relative.estimate):
        return (NAN, NAN)
    se_c, se_t = comp.arm_se
    if not (math.isfinite(se_c) and math.isfinite(se_t)):
        return interval(comp.relative.estimate, comp.relative.se, mult)
    return fieller_pair(comp.treatment_mean, comp.control_mean, se_t, se_c, mult, comp.nonnegative)
