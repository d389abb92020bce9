"""Turn the aggregator's cells into the stats engine's sufficient statistics."""

from __future__ import annotations

from service.spec import Metric
from service.stats import CupedStats, MeanStats, ProportionStats, RatioStats, Stats
from service.store.aggregates import Cell

__all__ = ["cell_stats", "empty_stats"]


def cell_stats(cell: Cell | None, metric: Metric) -> Stats:
    """The statistics type that fits ``metric``; a missing cell is an empty one."""
    if cell is None:
        return empty_stats(metric)
    if metric.kind == "ratio":
        return RatioStats(
            cell.n, cell.sum, cell.sum_sq, cell.den_sum, cell.den_sum_sq, cell.cross_sum
        )
    if metric.kind == "proportion":
        return ProportionStats(cell.n, cell.sum)
    if metric.covariate is not None and cell.cov_sum_sq > 0:
        return CupedStats(
            cell.n, cell.sum, cell.sum_sq, cell.cov_sum, cell.cov_sum_sq, cell.cov_cross
        )
    return MeanStats(cell.n, cell.sum, cell.sum_sq)


def empty_stats(metric: Metric) -> Stats:
    if metric.kind == "ratio":
        return RatioStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if metric.kind == "proportion":
        return ProportionStats(0, 0.0)
    return MeanStats(0, 0.0, 0.0)
