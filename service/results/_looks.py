"""Planned looks of a group-sequential design, replayed from the time cells.

Time is cut into windows of the spec's ``analysis.look_every`` (default an hour; windows
start on multiples of it since the epoch). Look ``k`` of ``K`` happens at the end of the
first window in which the effective units per variant of (baseline, candidate) reach
``k/K`` of the planned maximum. Its statistics are the cumulative cells at the end of that
window, so looks are recorded by the data itself and every reader sees the same looks,
however often it asks. Only completed windows count: the window in progress is still
changing, and a look must not move once taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.stats import effective_units
from service.store.aggregates import Cell, ExperimentCells

__all__ = ["LookPoint", "primary_looks"]


@dataclass(frozen=True, slots=True)
class LookPoint:
    start: int
    """Epoch seconds at which the look's window starts (it ends ``look_every`` later)."""
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
    look_every: int,
    now: float,
) -> list[LookPoint]:
    """The looks reached by the end of the last window completed at ``now``, oldest first."""
    current = int(now // look_every)
    by_window: dict[int, dict[str, Cell]] = {}
    for cell in cells.cells:
        if (
            cell.hour is None
            or cell.segment is not None
            or cell.metric != metric
            or cell.variant not in (baseline, candidate)
        ):
            continue
        window = cell.hour * cells.cell_seconds // look_every
        if window < current:
            within = by_window.setdefault(window, {})
            within[cell.variant] = _cumulate(within.get(cell.variant), cell)
    running: dict[str, Cell | None] = {baseline: None, candidate: None}
    out: list[LookPoint] = []
    next_look = 1
    for window in sorted(by_window):
        for variant, delta in by_window[window].items():
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
            out.append(LookPoint(start=window * look_every, baseline=b, treatment=t, units=units))
    return out
