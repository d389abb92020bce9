"""Columns of sufficient statistics: many arms of one kind, for vectorised analysis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from service.stats._statistics import CupedStats, MeanStats, ProportionStats, RatioStats, Stats

FloatArray = npt.NDArray[np.float64]
StatsKind = Literal["mean", "proportion", "ratio", "cuped"]

_KIND_OF: dict[type, StatsKind] = {
    MeanStats: "mean",
    ProportionStats: "proportion",
    RatioStats: "ratio",
    CupedStats: "cuped",
}


def stats_kind(stats: Stats) -> StatsKind:
    """The batch kind of one statistics object."""
    return _KIND_OF[type(stats)]


def _column(values: Sequence[float] | FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


@dataclass(frozen=True, slots=True)
class StatsBatch:
    """Sufficient statistics of many arms of one kind, as float64 columns.

    `other_*` and `cross_sum` hold the ratio's denominator or the CUPED covariate
    (zeros for plain means and proportions).
    """

    kind: StatsKind
    n: FloatArray
    sum: FloatArray
    sum_sq: FloatArray
    other_sum: FloatArray
    other_sum_sq: FloatArray
    cross_sum: FloatArray

    def __len__(self) -> int:
        return int(self.n.shape[0])

    @classmethod
    def from_columns(
        cls,
        kind: StatsKind,
        n: Sequence[float] | FloatArray,
        sum: Sequence[float] | FloatArray,
        sum_sq: Sequence[float] | FloatArray | None = None,
        other_sum: Sequence[float] | FloatArray | None = None,
        other_sum_sq: Sequence[float] | FloatArray | None = None,
        cross_sum: Sequence[float] | FloatArray | None = None,
    ) -> StatsBatch:
        """Build a batch from arrays; missing columns are zeros (sum_sq = sum for 0/1)."""
        n_col = _column(n)
        sum_col = _column(sum)
        zeros = np.zeros_like(n_col)
        if sum_sq is None:
            sum_sq_col = sum_col.copy() if kind == "proportion" else zeros
        else:
            sum_sq_col = _column(sum_sq)
        return cls(
            kind,
            n_col,
            sum_col,
            sum_sq_col,
            zeros if other_sum is None else _column(other_sum),
            zeros if other_sum_sq is None else _column(other_sum_sq),
            zeros if cross_sum is None else _column(cross_sum),
        )

    @classmethod
    def from_stats(cls, stats: Sequence[Stats]) -> StatsBatch:
        """Stack statistics objects of one type into columns."""
        if not stats:
            raise ValueError("from_stats needs at least one statistics object")
        kind = stats_kind(stats[0])
        rows = np.empty((len(stats), 6), dtype=np.float64)
        for i, s in enumerate(stats):
            if _KIND_OF[type(s)] != kind:
                raise ValueError(f"mixed statistics types in one batch: {kind} and {type(s)}")
            if isinstance(s, MeanStats):
                rows[i] = (s.n, s.sum, s.sum_sq, 0.0, 0.0, 0.0)
            elif isinstance(s, ProportionStats):
                rows[i] = (s.n, s.sum, s.sum, 0.0, 0.0, 0.0)
            elif isinstance(s, RatioStats):
                rows[i] = (s.n, s.num_sum, s.num_sum_sq, s.den_sum, s.den_sum_sq, s.cross_sum)
            else:
                rows[i] = (s.n, s.sum, s.sum_sq, s.cov_sum, s.cov_sum_sq, s.cov_cross)
        return cls(kind, *(np.ascontiguousarray(rows[:, j]) for j in range(6)))
