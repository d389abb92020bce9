"""Fixed-horizon estimators on sufficient statistics, vectorised over cells.

* means: difference in means with Welch's t (unequal variances);
* proportions: the two-proportion Wald z-test, the p-value and the CI from one
  unpooled standard error (so they always agree; the sequential designs use the same
  z), as statsmodels' `test_proportions_2indep` / `confint_proportions_2indep` with
  `method="wald"`;
* ratios: delta method across units, normal theory;
* CUPED: regression adjustment with theta pooled over both arms, Welch's t on the
  adjusted variances.

The relative effect treatment/control - 1 reports the delta-method standard error for
the ratio of two independent means and Fieller's interval, which inverts the same
test as the verdict (`_intervals`): its p-value is the absolute one. One
implementation works on columns (`compare_batch`); the scalar twin in `_pair` is held
equal to it by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from service.stats._batch import FloatArray, StatsBatch
from service.stats._constants import ErrorCode
from service.stats._intervals import fieller
from service.stats._pair import compare_pair
from service.stats._results import NAN, Comparison, Effect
from service.stats._statistics import (
    CupedStats,
    MeanStats,
    ProportionStats,
    RatioStats,
    Stats,
)

ERROR_TABLE: tuple[ErrorCode | None, ...] = (
    None,
    ErrorCode.INSUFFICIENT_DATA,
    ErrorCode.ZERO_DENOMINATOR,
    ErrorCode.ZERO_VARIANCE,
    ErrorCode.ZERO_BASELINE_MEAN,
)
_INSUFFICIENT, _ZERO_DEN, _ZERO_VAR, _ZERO_BASE = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class ComparisonBatch:
    """Column form of many `Comparison`s (see there); `error` indexes `ERROR_TABLE`."""

    control_n: FloatArray
    control_mean: FloatArray
    treatment_n: FloatArray
    treatment_mean: FloatArray
    abs_estimate: FloatArray
    abs_se: FloatArray
    abs_lower: FloatArray
    abs_upper: FloatArray
    abs_p: FloatArray
    rel_estimate: FloatArray
    rel_se: FloatArray
    rel_lower: FloatArray
    rel_upper: FloatArray
    rel_p: FloatArray
    df: FloatArray
    error: npt.NDArray[np.int8]
    alpha: float
    control_se: FloatArray
    treatment_se: FloatArray
    nonnegative: bool

    def __len__(self) -> int:
        return int(self.abs_estimate.shape[0])

    @property
    def z(self) -> FloatArray:
        """Absolute effect over its standard error; NaN where degenerate."""
        with np.errstate(all="ignore"):
            return np.where(self.abs_se > 0, self.abs_estimate / self.abs_se, NAN)

    def row(self, i: int) -> Comparison:
        """The i-th comparison as a scalar result object."""
        return Comparison(
            control_n=int(self.control_n[i]),
            control_mean=float(self.control_mean[i]),
            treatment_n=int(self.treatment_n[i]),
            treatment_mean=float(self.treatment_mean[i]),
            absolute=Effect(
                float(self.abs_estimate[i]),
                float(self.abs_se[i]),
                (float(self.abs_lower[i]), float(self.abs_upper[i])),
                float(self.abs_p[i]),
            ),
            relative=Effect(
                float(self.rel_estimate[i]),
                float(self.rel_se[i]),
                (float(self.rel_lower[i]), float(self.rel_upper[i])),
                float(self.rel_p[i]),
            ),
            df=float(self.df[i]),
            alpha=self.alpha,
            error=ERROR_TABLE[int(self.error[i])],
            arm_se=(float(self.control_se[i]), float(self.treatment_se[i])),
            nonnegative=self.nonnegative,
        )

    def rows(self) -> list[Comparison]:
        return [self.row(i) for i in range(len(self))]

    def relative_interval(self, mult: FloatArray | float) -> tuple[FloatArray, FloatArray]:
        """Fieller's relative interval at `mult` standard errors (see `_intervals`)."""
        return fieller(
            self.treatment_mean,
            self.control_mean,
            self.treatment_se,
            self.control_se,
            mult,
            self.nonnegative,
        )


def _sample_var(n: FloatArray, s: FloatArray, ss: FloatArray) -> FloatArray:
    with np.errstate(all="ignore"):
        v = (ss - s * s / n) / (n - 1.0)
    return np.where(n >= 2, np.maximum(v, 0.0), 0.0)


def _sample_cov(n: FloatArray, sx: FloatArray, sy: FloatArray, sxy: FloatArray) -> FloatArray:
    with np.errstate(all="ignore"):
        c = (sxy - sx * sy / n) / (n - 1.0)
    return np.where(n >= 2, c, 0.0)


def arm_moments(b: StatsBatch) -> tuple[FloatArray, FloatArray]:
    """Per-arm mean and per-unit variance (the mean's variance is variance / n)."""
    n = b.n
    with np.errstate(all="ignore"):
        if b.kind == "ratio":
            mean = np.where(b.other_sum != 0, b.sum / b.other_sum, 0.0)
            den_mean = np.where(n > 0, b.other_sum / n, 0.0)
            vx = _sample_var(n, b.sum, b.sum_sq)
            vy = _sample_var(n, b.other_sum, b.other_sum_sq)
            cxy = _sample_cov(n, b.sum, b.other_sum, b.cross_sum)
            v = (vx - 2.0 * mean * cxy + mean * mean * vy) / (den_mean * den_mean)
            var = np.where((n >= 2) & (den_mean != 0), np.maximum(v, 0.0), 0.0)
            return mean, var
        mean = np.where(n > 0, b.sum / n, 0.0)
    if b.kind == "proportion":
        return mean, np.maximum(mean * (1.0 - mean), 0.0)
    return mean, _sample_var(n, b.sum, b.sum_sq)


def _cuped_moments(
    c: StatsBatch, t: StatsBatch
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Regression-adjusted means and variances, theta pooled within arms."""

    def centred(b: StatsBatch) -> tuple[FloatArray, FloatArray]:
        with np.errstate(all="ignore"):
            sxy = np.where(b.n > 0, b.cross_sum - b.sum * b.other_sum / b.n, 0.0)
            sxx = np.where(b.n > 0, b.other_sum_sq - b.other_sum * b.other_sum / b.n, 0.0)
        return sxy, np.maximum(sxx, 0.0)

    sxy_c, sxx_c = centred(c)
    sxy_t, sxx_t = centred(t)
    sxx = sxx_c + sxx_t
    with np.errstate(all="ignore"):
        theta = np.where(sxx > 0, (sxy_c + sxy_t) / sxx, 0.0)
        n_all = c.n + t.n
        x_pooled = np.where(n_all > 0, (c.other_sum + t.other_sum) / n_all, 0.0)

    def adjusted(b: StatsBatch) -> tuple[FloatArray, FloatArray]:
        with np.errstate(all="ignore"):
            y_mean = np.where(b.n > 0, b.sum / b.n, 0.0)
            x_mean = np.where(b.n > 0, b.other_sum / b.n, 0.0)
        vy = _sample_var(b.n, b.sum, b.sum_sq)
        vx = _sample_var(b.n, b.other_sum, b.other_sum_sq)
        cxy = _sample_cov(b.n, b.sum, b.other_sum, b.cross_sum)
        var = np.maximum(vy + theta * theta * vx - 2.0 * theta * cxy, 0.0)
        return y_mean - theta * (x_mean - x_pooled), var

    mc, vc = adjusted(c)
    mt, vt = adjusted(t)
    return mc, vc, mt, vt


def compare_batch(
    control: StatsBatch, treatment: StatsBatch, alpha: float = 0.05
) -> ComparisonBatch:
    """Compare treatment with control cell by cell at a fixed horizon.

    Both batches must have the same kind and length.
    """
    if control.kind != treatment.kind:
        raise ValueError(f"control is {control.kind} but treatment is {treatment.kind}")
    if len(control) != len(treatment):
        raise ValueError("control and treatment batches differ in length")
    kind = control.kind
    nc, nt = control.n, treatment.n
    if kind == "cuped":
        mc, vc, mt, vt = _cuped_moments(control, treatment)
    else:
        mc, vc = arm_moments(control)
        mt, vt = arm_moments(treatment)

    with np.errstate(all="ignore"):
        se2c = np.where(nc > 0, vc / nc, 0.0)
        se2t = np.where(nt > 0, vt / nt, 0.0)
        abs_est = mt - mc
        abs_se = np.sqrt(se2c + se2t)
        if kind in ("mean", "cuped"):
            den = se2c * se2c / (nc - 1.0) + se2t * se2t / (nt - 1.0)
            df = (se2c + se2t) * (se2c + se2t) / den
            usable = np.isfinite(df) & (df > 0) & (nc >= 2) & (nt >= 2)
            df = np.where(usable, df, np.inf)
        else:
            df = np.full_like(abs_est, np.inf)

        error = np.zeros(abs_est.shape, dtype=np.int8)
        error[mc == 0] = _ZERO_BASE
        error[~(abs_se > 0)] = _ZERO_VAR
        if kind == "ratio":
            error[(control.other_sum == 0) | (treatment.other_sum == 0)] = _ZERO_DEN
        error[(nc < 2) | (nt < 2)] = _INSUFFICIENT
        failed = (error > 0) & (error < _ZERO_BASE)

        abs_p = 2.0 * special.stdtr(df, -np.abs(abs_est / abs_se))
        abs_p = np.where(failed | ~(abs_se > 0), 1.0, abs_p)
        abs_se = np.where(failed, NAN, abs_se)

        rel_est = np.where(mc != 0, mt / mc - 1.0, NAN)
        ratio = mt / mc
        rel_se = np.sqrt((se2t + ratio * ratio * se2c) / (mc * mc))
        rel_se = np.where(failed | (mc == 0) | ~(rel_se > 0), NAN, rel_se)
        rel_p = np.where(failed | (mc == 0), 1.0, abs_p)

    q = special.stdtrit(df, 1.0 - alpha / 2.0)
    se_c, se_t = np.sqrt(se2c), np.sqrt(se2t)
    nonnegative = kind == "proportion"
    rel_lower, rel_upper = fieller(mt, mc, se_t, se_c, q, nonnegative)
    no_ratio = failed | (mc == 0)
    rel_lower, rel_upper = np.where(no_ratio, NAN, rel_lower), np.where(no_ratio, NAN, rel_upper)
    return ComparisonBatch(
        control_n=nc,
        control_mean=mc,
        treatment_n=nt,
        treatment_mean=mt,
        abs_estimate=abs_est,
        abs_se=abs_se,
        abs_lower=abs_est - q * abs_se,
        abs_upper=abs_est + q * abs_se,
        abs_p=abs_p,
        rel_estimate=rel_est,
        rel_se=rel_se,
        rel_lower=rel_lower,
        rel_upper=rel_upper,
        rel_p=rel_p,
        df=df,
        error=error,
        alpha=alpha,
        control_se=se_c,
        treatment_se=se_t,
        nonnegative=nonnegative,
    )


def compare(control: Stats, treatment: Stats, alpha: float = 0.05) -> Comparison:
    """Compare two arms of the same statistics type at a fixed horizon."""
    return compare_pair(control, treatment, alpha)


def welch_test(control: MeanStats, treatment: MeanStats, alpha: float = 0.05) -> Comparison:
    """Difference in means, Welch's unequal-variance t-test (two-sided)."""
    return compare(control, treatment, alpha)


def two_proportions_test(
    control: ProportionStats, treatment: ProportionStats, alpha: float = 0.05
) -> Comparison:
    """Two-proportion Wald z-test: p-value and CI from the same unpooled standard error."""
    return compare(control, treatment, alpha)


def ratio_test(control: RatioStats, treatment: RatioStats, alpha: float = 0.05) -> Comparison:
    """Ratio metrics (sum of numerators / sum of denominators), delta method, z-test."""
    return compare(control, treatment, alpha)


def cuped_test(control: CupedStats, treatment: CupedStats, alpha: float = 0.05) -> Comparison:
    """CUPED / regression adjustment with theta pooled over both arms."""
    return compare(control, treatment, alpha)
