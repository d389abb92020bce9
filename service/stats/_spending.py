"""Lan-DeMets alpha-spending functions (two-sided, cumulative alpha at information t)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from service.stats._constants import SPENDING_KINDS, SpendingKind


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
