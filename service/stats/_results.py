"""Result types of the estimators, serialisable with `to_dict()`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.stats._constants import ErrorCode

NAN = float("nan")


def clean(x: float) -> float | None:
    """A float for JSON: NaN and infinities become None."""
    return float(x) if math.isfinite(x) else None


def interval_dict(estimate: float, ci: tuple[float, float]) -> dict[str, object]:
    """`{"estimate", "ci"}` of an effect, for JSON."""
    return {"estimate": clean(estimate), "ci": [clean(ci[0]), clean(ci[1])]}


def arm_dict(units: int, mean: float) -> dict[str, object]:
    """`{"units", "mean"}` of an arm, for JSON."""
    return {"units": units, "mean": clean(mean)}


@dataclass(frozen=True, slots=True)
class Effect:
    """One effect (absolute or relative): estimate, standard error, CI and p-value."""

    estimate: float
    se: float
    ci: tuple[float, float]
    p_value: float

    def to_dict(self) -> dict[str, object]:
        return {
            "estimate": clean(self.estimate),
            "se": clean(self.se),
            "ci": [clean(self.ci[0]), clean(self.ci[1])],
            "p_value": clean(self.p_value),
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control at a fixed horizon.

    `relative` is treatment/control - 1 with a delta-method standard error and
    Fieller's interval, the inversion of the absolute test (so its p-value is the
    absolute p-value and its interval excludes 0 exactly when that is significant). `df` is
    the Welch-Satterthwaite degrees of freedom (infinite for normal-theory tests).
    `error` is set when the data are degenerate; the fields then hold what could be
    computed and NaN elsewhere, with p-values of 1. `arm_se` holds the standard errors
    of the control and treatment means; `nonnegative` says the metric cannot be
    negative (proportions), so its relative interval stops at -100 %.
    """

    control_n: int
    control_mean: float
    treatment_n: int
    treatment_mean: float
    absolute: Effect
    relative: Effect
    df: float
    alpha: float
    error: ErrorCode | None = None
    arm_se: tuple[float, float] = (NAN, NAN)
    nonnegative: bool = False

    @property
    def z(self) -> float:
        """The absolute effect over its standard error (NaN when degenerate)."""
        se = self.absolute.se
        return self.absolute.estimate / se if se > 0 else NAN

    def to_dict(self) -> dict[str, object]:
        return {
            "baseline": arm_dict(self.control_n, self.control_mean),
            "treatment": arm_dict(self.treatment_n, self.treatment_mean),
            "absolute": self.absolute.to_dict(),
            "relative": self.relative.to_dict(),
            "df": clean(self.df),
            "alpha": self.alpha,
            "error": None if self.error is None else self.error.value,
        }
