"""Sample-ratio mismatch: are units split across variants as the weights say?

* `chi_square_p`: Pearson's chi-square goodness-of-fit test; valid for one look.
* `sequential_srm_p`: the Dirichlet-multinomial Bayes factor of Lindon & Malek (2020,
  "Anytime-valid inference for multinomial count data"). Under the expected split the
  Bayes factor is a nonnegative martingale, so by Ville's inequality min(1, 1/BF) is
  an always-valid p-value: checking it after every event keeps the false-alarm
  probability at most the threshold.

The prior is Dirichlet(k * weights); k ("concentration") sets which imbalances are
found fastest. The prior spread of a share w is sqrt(w (1 - w) / (k + 1)) and its
information after N units is N / (w (1 - w)), so in the normal approximation this is
the mixture test of `_always_valid` with x = N / (k + 1): it is sharpest at the N
where x = x*(threshold). `srm_concentration` tunes k so that N is the experiment's
planned size (k ~ N / 16.5 at a 0.001 threshold), where a small mismatch must be
caught; the default k = 1000, for when there is no plan, aims at ~16,500 units. Any
real imbalance is found eventually.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special

from service.stats._always_valid import mixture_tuning
from service.stats._constants import SRM_THRESHOLD
from service.stats._exceptions import StatsInputError

DEFAULT_CONCENTRATION = 1000.0


def srm_concentration(planned_units: float | None, threshold: float = SRM_THRESHOLD) -> float:
    """The concentration that makes the sequential test sharpest at `planned_units`.

    `planned_units` counts every variant; without a plan (None or not positive) the
    default is returned.
    """
    if planned_units is None or not (math.isfinite(planned_units) and planned_units > 0):
        return DEFAULT_CONCENTRATION
    return max(planned_units / mixture_tuning(threshold) - 1.0, 1.0)


def _validate(counts: Sequence[float], weights: Sequence[float]) -> tuple[list[float], list[float]]:
    # Plain Python: a handful of variants, checked continuously by the monitor.
    if len(counts) != len(weights):
        raise StatsInputError("weights", "needs one weight per variant count")
    if len(counts) < 2:
        raise StatsInputError("counts", "needs at least two variants")
    c = [float(x) for x in counts]
    w = [float(x) for x in weights]
    if not all(math.isfinite(x) and x >= 0 for x in c):
        raise StatsInputError("counts", "must be finite and >= 0")
    if not all(math.isfinite(x) and x > 0 for x in w):
        raise StatsInputError("weights", "must be finite and > 0")
    total_w = sum(w)
    return c, [x / total_w for x in w]


def chi_square_p(counts: Sequence[float], weights: Sequence[float]) -> float:
    """Pearson chi-square p-value of the counts against the expected split."""
    c, w = _validate(counts, weights)
    total = sum(c)
    if total <= 0:
        return 1.0
    statistic = sum((o - total * p) ** 2 / (total * p) for o, p in zip(c, w, strict=True))
    return float(special.chdtrc(len(c) - 1, statistic))


def sequential_srm_p(
    counts: Sequence[float],
    weights: Sequence[float],
    concentration: float = DEFAULT_CONCENTRATION,
) -> float:
    """Always-valid p-value min(1, 1/BF) of the Dirichlet-multinomial test."""
    c, w = _validate(counts, weights)
    if not concentration > 0:
        raise StatsInputError("concentration", f"must be positive, got {concentration}")
    a = [concentration * p for p in w]
    log_bf = math.lgamma(sum(a)) - math.lgamma(sum(a) + sum(c))
    for x, ai, p in zip(c, a, w, strict=True):
        log_bf += math.lgamma(ai + x) - math.lgamma(ai) - x * math.log(p)
    return 1.0 if log_bf <= 0 else math.exp(-log_bf)


@dataclass(frozen=True, slots=True)
class SRMResult:
    """Both p-values; `ok` follows the one chosen (`sequential` by default)."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    chi_square_p: float
    sequential_p: float
    sequential: bool
    threshold: float

    @property
    def p_value(self) -> float:
        return self.sequential_p if self.sequential else self.chi_square_p

    @property
    def ok(self) -> bool:
        return self.p_value >= self.threshold

    def to_dict(self) -> dict[str, object]:
        return {
            "p_value": self.p_value,
            "ok": self.ok,
            "chi_square_p": self.chi_square_p,
            "sequential_p": self.sequential_p,
            "test": "sequential" if self.sequential else "chi_square",
            "threshold": self.threshold,
            "counts": list(self.counts),
            "expected": list(self.expected),
        }


def srm_check(
    counts: Sequence[float],
    weights: Sequence[float],
    *,
    threshold: float = SRM_THRESHOLD,
    sequential: bool = True,
    concentration: float = DEFAULT_CONCENTRATION,
) -> SRMResult:
    """Check the split of units; flagged (not `ok`) when the chosen p < threshold.

    Use `sequential=True` (default) for anything looked at repeatedly (dashboards,
    the monitor); the chi-square test is right for a single, final look.
    """
    c, w = _validate(counts, weights)
    return SRMResult(
        counts=tuple(int(x) for x in c),
        expected=tuple(sum(c) * p for p in w),
        chi_square_p=chi_square_p(counts, weights),
        sequential_p=sequential_srm_p(counts, weights, concentration),
        sequential=sequential,
        threshold=threshold,
    )
