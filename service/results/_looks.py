"""Planned looks of a group-sequential design, replayed from the hourly cells.

Look ``k`` of ``K`` happens at the end of the first hour in which the effective units per
variant of (baseline, candidate) reach ``k/K`` of the planned maximum. Its statistics are
the cumulative cells at that hour, so looks are recorded by the data itself and every
reader sees the same looks, however often it asks. Only completed hours count: the hour
in progress is still changing, and a look must not move once taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.stats import effective_units
from service.store.aggregates import Cell, ExperimentCells

__all__ = ["LookPoint", "primary_looks"]


@dataclass(frozen=True, slots=True)
class LookPoint:
    hour: int
    baseline: Cell
    treatment: Cell
    units: float


def _cumulate(base: Cell | None, delta: Cell) -> Cell:
    return delta if base is None else base + delta


def primary_looks(
    cells: ExperimentCells,
    metric: str,
    baseline: str,
    candidate: str,
    planned_per_variant: float,
    looks: int,
    before_hour: int,
) -> list[LookPoint]:
    """The looks reached by the end of the last hour before ``before_hour``, oldest first."""
    by_hour: dict[int, dict[str, Cell]] = {}
    for cell in cells.cells:
        if (
            cell.hour is not None
            and cell.hour < before_hour
            and cell.segment is None
            and cell.metric == metric
            and cell.variant in (baseline, candidate)
        ):
            by_hour.setdefault(cell.hour, {})[cell.variant] = cell
    running: dict[str, Cell | None] = {baseline: None, candidate: None}
    out: list[LookPoint] = []
    next_look = 1
    for hour in sorted(by_hour):
        for variant, delta in by_hour[hour].items():
            running[variant] = _cumulate(running[variant], delta)
        b, t = running[baseline], running[candidate]
        if b is None or t is None or next_look > looks:
            continue
        units = effective_units(b.n, t.n)
        crossed = 0
        while next_look <= looks and units >= planned_per_variant * next_look / looks:
            next_look += 1
            crossed += 1
        if crossed:
            out.append(LookPoint(hour=hour, baseline=b, treatment=t, units=units))
    return out
