"""Lan-DeMets boundaries at the information actually observed, the alpha-spending
functions they spend (:class:`Spending`), and what derives from them.

Boundaries are two-sided and symmetric on the z scale. At look k with information
fraction t_k the boundary c_k solves

    P_0(|Z_j| < c_j for j < k, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1}),

by recursive numerical integration (see `_recursion`). Because each boundary depends
only on the looks up to it, the looks may be irregular and their number need not be
fixed in advance. The final look spends all the alpha that is left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from service.stats._constants import SPENDING_KINDS, SpendingKind
from service.stats._recursion import Density, crossing, density_at, propagate

Z_CAP = 8.5
"""Boundaries are capped here: crossing beyond it has probability < 1e-16."""
RESOLUTION = 40
"""Grid points per standard deviation of the score in the recursion."""


@dataclass(frozen=True, slots=True)
class Spending:
    """An alpha-spending function.

    * `obrien_fleming` (default): each side spends 2 - 2 Phi(z_{1-alpha/4} / sqrt(t)) of
      its alpha/2 (Lan & DeMets 1983), so the two-sided total is twice that;
    * `pocock`: alpha ln(1 + (e - 1) t);
    * `power`: alpha t^rho (Kim & DeMets; rho=3 is close to O'Brien-Fleming, rho=1 to
      Pocock).
    """

    kind: SpendingKind = "obrien_fleming"
    rho: float = 3.0

    def __post_init__(self) -> None:
        if self.kind not in SPENDING_KINDS:
            raise ValueError(f"unknown spending function {self.kind!r}")
        if not self.rho > 0:
            raise ValueError(f"rho must be positive, got {self.rho}")

    def cumulative(self, t: float, alpha: float) -> float:
        """Alpha spent by information fraction `t` (0 at t=0, alpha at t>=1)."""
        if t <= 0:
            return 0.0
        if t >= 1:
            return alpha
        if self.kind == "obrien_fleming":
            z = float(special.ndtri(1.0 - alpha / 4.0))
            return float(4.0 * special.ndtr(-z / math.sqrt(t)))
        if self.kind == "pocock":
            return alpha * math.log(1.0 + (math.e - 1.0) * t)
        return float(alpha * t**self.rho)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    ts = tuple(float(t) for t in fractions)
    if not ts:
        raise ValueError("at least one look is needed")
    previous = 0.0
    for t in ts:
        if not (t > previous and t <= 1.0):
            raise ValueError(
                f"information fractions must increase strictly within (0, 1], got {ts}"
            )
        previous = t
    return ts


@dataclass(frozen=True, slots=True)
class _State:
    bounds: tuple[float, ...]
    density: Density | None
    spent: float
    t: float


def _solve_look(state: _State, t: float, target: float, resolution: int) -> _State:
    """Add one look that spends `target` alpha (under the null)."""
    sigma = math.sqrt(t - state.t)
    root_t = math.sqrt(t)
    prev = state.density
    c = _solve_boundary(prev, root_t, sigma, target)
    up, lo = crossing(prev, c * root_t, sigma, 0.0)
    density = propagate(prev, c * root_t, t, sigma, 0.0, resolution)
    return _State((*state.bounds, c), density, state.spent + up + lo, t)


def _solve_boundary(prev: Density | None, root_t: float, sigma: float, target: float) -> float:
    """The z boundary c with P(cross at this look) = target.

    Newton on log P with bisection as the safeguard (as in "rtsafe"): Newton when it
    stays inside the bracket and at least halves the step, bisection otherwise, so
    closely spaced looks, whose crossing probability falls off a cliff just above the
    previous boundary, converge too.
    """

    def cross(c: float) -> float:
        up, lo = crossing(prev, c * root_t, sigma, 0.0)
        return up + lo

    if target <= 0.0 or cross(Z_CAP) >= target:
        return Z_CAP
    if cross(0.0) <= target:
        return 0.0
    log_target = math.log(target)
    lo_c, hi_c = 0.0, Z_CAP
    # Ignoring earlier looks can only make the crossing likelier: start above the root.
    c = min(float(-special.ndtri(min(target, 1.0) / 2.0)), Z_CAP)
    step_before = hi_c - lo_c
    step = step_before
    for _ in range(200):
        p = cross(c)
        h = math.log(p) - log_target if p > 0.0 else -math.inf
        if abs(h) < 1e-10:
            return c
        if h > 0:
            lo_c = c
        else:
            hi_c = c
        if hi_c - lo_c < 1e-13:
            return c
        slope = math.nan
        if p > 0.0:
            b = c * root_t
            dens = density_at(prev, np.array([b, -b]), sigma, 0.0)
            slope = -root_t * float(dens[0] + dens[1]) / p
        newton = c - h / slope if slope < 0 else math.nan
        if not (lo_c < newton < hi_c) or abs(2.0 * h) > abs(step_before * slope):
            step_before, step = step, 0.5 * (hi_c - lo_c)
            c = lo_c + step
        else:
            step_before, step = step, c - newton
            c = newton
    return c


_START = _State((), None, 0.0, 0.0)


@lru_cache(maxsize=1024)
def _prefix(
    fractions: tuple[float, ...], alpha: float, spending: Spending, resolution: int
) -> _State:
    # Memoised by prefix: a new look costs one step, not a rerun of all looks.
    state = _prefix(fractions[:-1], alpha, spending, resolution) if len(fractions) > 1 else _START
    t = fractions[-1]
    return _solve_look(state, t, max(spending.cumulative(t, alpha) - state.spent, 0.0), resolution)


def _boundaries(
    fractions: tuple[float, ...], alpha: float, spending: Spending, final: bool, resolution: int
) -> tuple[float, ...]:
    for k in range(1, len(fractions)):  # fill the cache oldest first: no deep recursion
        _prefix(fractions[:k], alpha, spending, resolution)
    if not final or fractions[-1] >= 1.0:
        return _prefix(fractions, alpha, spending, resolution).bounds
    state = _prefix(fractions[:-1], alpha, spending, resolution) if len(fractions) > 1 else _START
    return _solve_look(state, fractions[-1], max(alpha - state.spent, 0.0), resolution).bounds


def lan_demets_boundaries(
    fractions: Sequence[float],
    alpha: float = 0.05,
    spending: Spending | None = None,
    *,
    final: bool = False,
    resolution: int = RESOLUTION,
) -> tuple[float, ...]:
    """Two-sided z boundaries for looks at the given information fractions.

    `fractions` increase strictly within (0, 1]. With `final=True` the last look spends
    all remaining alpha even if its fraction is below 1 (a fraction of 1 always does).
    Results are memoised, so repeated analyses of the same looks are cheap.
    """
    return _boundaries(
        _check_fractions(fractions), float(alpha), spending or Spending(), final, resolution
    )


def crossing_probabilities(
    fractions: Sequence[float],
    boundaries: Sequence[float],
    drift: float = 0.0,
    *,
    resolution: int = RESOLUTION,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-look probabilities of first crossing the upper and the lower boundary.

    `drift` is the expected z at information fraction 1 (E[Z_k] = drift sqrt(t_k)).
    """
    ts = _check_fractions(fractions)
    if len(boundaries) != len(ts):
        raise ValueError("one boundary per look is needed")
    prev: Density | None = None
    t_prev = 0.0
    upper: list[float] = []
    lower: list[float] = []
    for t, c in zip(ts, boundaries, strict=True):
        sigma = math.sqrt(t - t_prev)
        shift = drift * (t - t_prev)
        b = float(c) * math.sqrt(t)
        up, lo = crossing(prev, b, sigma, shift)
        upper.append(up)
        lower.append(lo)
        prev = propagate(prev, b, t, sigma, shift, resolution)
        t_prev = t
    return tuple(upper), tuple(lower)


P_VALUE_RESOLUTION = 10
"""A coarser grid for the p-value search (relative error about 1e-3)."""


def _fresh_boundaries(
    fractions: tuple[float, ...], alpha: float, spending: Spending, final: bool
) -> tuple[float, ...]:
    state = _START
    for k, t in enumerate(fractions):
        last = k == len(fractions) - 1
        cumulative = alpha if final and last else spending.cumulative(t, alpha)
        state = _solve_look(state, t, max(cumulative - state.spent, 0.0), P_VALUE_RESOLUTION)
    return state.bounds


def repeated_p_value(
    z_values: Sequence[float],
    fractions: Sequence[float],
    spending: Spending | None = None,
    *,
    final: bool = False,
    crossed_at: float | None = None,
) -> float:
    """Smallest alpha at which some look so far would have crossed its boundary.

    P(p <= alpha at any look) <= alpha, and p <= alpha exactly when a boundary at
    level alpha has been crossed, so it agrees with the test's verdict. `crossed_at`
    (optional) is an alpha already known to be crossed (or not: pass it as negative)
    to narrow the search.
    """
    spend = spending or Spending()
    ts = _check_fractions(fractions)
    zs = [abs(z) if math.isfinite(z) else 0.0 for z in z_values]
    if max(zs, default=0.0) <= 0.0:
        return 1.0

    def margin(log_alpha: float) -> float:
        bounds = _fresh_boundaries(ts, math.exp(log_alpha), spend, final)
        return max(z - c for z, c in zip(zs, bounds, strict=True))

    lo, hi = math.log(1e-15), math.log(1.0 - 1e-12)
    if crossed_at is not None:
        if crossed_at > 0:
            hi = math.log(crossed_at)
        else:
            lo = math.log(-crossed_at)
    if margin(lo) >= 0.0:
        return math.exp(lo)
    if margin(hi) < 0.0:
        return 1.0 if crossed_at is None or crossed_at < 0 else math.exp(hi)
    return math.exp(optimize.brentq(margin, lo, hi, xtol=2e-3))
