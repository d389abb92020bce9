"""Independent references for the engine's intervals, computed another way."""

from __future__ import annotations

import math

from scipy import optimize


def fieller_by_roots(
    mt: float, mc: float, se_t: float, se_c: float, q: float
) -> tuple[float, float]:
    """Fieller's interval for mt/mc - 1 by root-finding on the test it inverts.

    The ratios rho with |mt - rho mc| / sqrt(se_t^2 + rho^2 se_c^2) < q, found with
    scipy's brentq on either side of mt/mc (bounded case only).
    """

    def excess(rho: float) -> float:
        return abs(mt - rho * mc) / math.sqrt(se_t**2 + rho**2 * se_c**2) - q

    centre = mt / mc
    step = max(abs(centre), 1e-3)
    lo = centre - step
    while excess(lo) < 0:
        lo -= step
    hi = centre + step
    while excess(hi) < 0:
        hi += step
    return (
        optimize.brentq(excess, lo, centre, xtol=1e-14) - 1.0,
        optimize.brentq(excess, centre, hi, xtol=1e-14) - 1.0,
    )
