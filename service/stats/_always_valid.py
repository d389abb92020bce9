"""Always-valid inference: the normal-mixture sequential probability ratio test.

For an effect estimate with standard error se (information I = 1/se^2), mixing the
likelihood ratio over a N(0, tau^2) prior on the effect gives

    Lambda = (1 + x)^(-1/2) exp(x z^2 / (2 (1 + x))),   x = tau^2 I,  z = estimate / se.

By Ville's inequality P(Lambda ever >= 1/alpha) <= alpha under the null, so
p = min(1, 1/Lambda) is an always-valid p-value and inverting it gives the asymptotic
confidence sequence (Robbins 1970; Howard et al. 2021; Waudby-Smith et al. 2023)

    estimate +/- se sqrt((1 + x) / x (ln(1 + x) + 2 ln(1 / alpha))).

The mixing variance is tuned so the sequence is tightest at the planned sample size:
x grows with information, so x = x* t with t = effective units / planned units per
variant and x* = -2 ln(alpha) + ln(1 - 2 ln(alpha)) (Howard et al., eq. 3.12).
"""

from __future__ import annotations

import math

import numpy as np

from service.stats._batch import FloatArray


def mixture_tuning(alpha: float) -> float:
    """x* = tau^2 I at the planned sample size that minimises the width there."""
    log_a = math.log(alpha)
    return -2.0 * log_a + math.log(1.0 - 2.0 * log_a)


def effective_units(control_n: float, treatment_n: float) -> float:
    """Units per variant of a balanced design with the same information."""
    if control_n <= 0 or treatment_n <= 0:
        return 0.0
    return 2.0 / (1.0 / control_n + 1.0 / treatment_n)


def information_fraction(control_n: float, treatment_n: float, planned_per_variant: float) -> float:
    """Effective units per variant over the planned units per variant (not capped)."""
    return effective_units(control_n, treatment_n) / planned_per_variant


def cs_multiplier(alpha: float | FloatArray, fraction: float | FloatArray) -> FloatArray:
    """Half-width of the confidence sequence in standard errors at information `fraction`.

    Infinite at zero information. Works elementwise on arrays.
    """
    a = np.asarray(alpha, dtype=np.float64)
    t = np.asarray(fraction, dtype=np.float64)
    log_a = np.log(a)
    x = (-2.0 * log_a + np.log(1.0 - 2.0 * log_a)) * t
    with np.errstate(all="ignore"):
        m = np.sqrt((1.0 + x) / x * (np.log1p(x) - 2.0 * log_a))
    return np.asarray(np.where(t > 0, m, np.inf), dtype=np.float64)


def always_valid_p(
    z: float | FloatArray, fraction: float | FloatArray, alpha: float | FloatArray
) -> FloatArray:
    """Always-valid p-value min(1, 1/Lambda) of the mixture tuned for `alpha`.

    p <= alpha exactly when |z| reaches `cs_multiplier(alpha, fraction)`. NaN z gives 1.
    """
    a = np.asarray(alpha, dtype=np.float64)
    t = np.asarray(fraction, dtype=np.float64)
    zz = np.asarray(z, dtype=np.float64)
    log_a = np.log(a)
    x = (-2.0 * log_a + np.log(1.0 - 2.0 * log_a)) * t
    log_lambda = -0.5 * np.log1p(x) + x * zz * zz / (2.0 * (1.0 + x))
    with np.errstate(all="ignore"):
        p = np.minimum(1.0, np.exp(-log_lambda))
    return np.asarray(np.where(np.isfinite(zz) & (t > 0), p, 1.0), dtype=np.float64)


def multiplier_at(alpha: float, fraction: float) -> float:
    """Scalar `cs_multiplier` in plain floats (no numpy overhead)."""
    if not fraction > 0:
        return math.inf
    log_a = math.log(alpha)
    x = mixture_tuning(alpha) * fraction
    if not x > 0:
        return math.inf
    return math.sqrt((1.0 + x) / x * (math.log1p(x) - 2.0 * log_a))


def p_value_at(z: float, fraction: float, alpha: float) -> float:
    """Scalar `always_valid_p` in plain floats."""
    if not (math.isfinite(z) and fraction > 0):
        return 1.0
    x = mixture_tuning(alpha) * fraction
    log_lambda = -0.5 * math.log1p(x) + x * z * z / (2.0 * (1.0 + x))
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)
