"""Read the sufficient statistics of an experiment as plain numbers, for the stats engine.

``await AggregateStore(redis).read(key)`` returns an :class:`ExperimentCells`: every cell
of the experiment, all-time totals (``hour=None``) and per-hour deltas, read atomically.
No Redis type leaks out: ints, floats, strings and tuples only.

What a cell means
-----------------
A cell is one ``variant`` x ``segment`` x ``metric`` (x ``hour``). ``segment`` is
``None`` for the whole population, else ``(segment name, value)`` for one declared segment
(values beyond ``segment_max_values`` distinct ones fold into ``"__other__"``; units missing
the attribute are in no cell of that segment). A unit's variant and segment values are fixed
when it enters the analysis: at its first exposure (assignment with ``in_experiment``) or
its first event, whichever the aggregator sees first. It counts from then on, with or
without events.

Per unit ``u`` and metric, the aggregator keeps ``y_u`` (and, for ratio metrics, ``d_u``):

- ``mean``: ``y_u`` = the sum of the unit's event values (0 without events);
- ``proportion``: ``y_u`` = 1 if any of its events has a value > 0, else 0;
- ``ratio``: ``y_u`` = the sum of its numerator values, ``d_u`` = of its denominator values;
  a unit whose ``d_u`` is 0 adds nothing to either sum (``y_u`` counts as 0), but is in ``n``;
- CUPED: ``x_u`` = the first value of the metric's ``covariate`` the unit's events carried
  (0 for units that sent none).

With ``unit: request`` every event is its own unit (no per-unit state; exposures are not
counted). The fields of :class:`Cell` are then sums over the cell's units:

==============  =================================================================
``n``           units in the cell
``sum``         Σ y_u
``sum_sq``      Σ y_u²
``den_sum``     Σ d_u            (ratio metrics; 0 otherwise)
``den_sum_sq``  Σ d_u²           (ratio)
``cross_sum``   Σ y_u·d_u        (ratio)
``cov_sum``     Σ x_u            (metrics with a covariate; 0 otherwise)
``cov_sum_sq``  Σ x_u²
``cov_cross``   Σ x_u·y_u        (for ratio metrics, with the numerator)
==============  =================================================================

Hours are whole hours since the Unix epoch (``int(ts // 3600)``) of the event or exposure
timestamp. An hourly cell holds *deltas*: ``n`` counts the units that entered in that hour,
and the sums hold how much the hour's events changed the sums above (a unit's second event
changes ``sum_sq`` by ``(y1 + y2)² - y1²``). So the statistics as of the end of hour ``h``
are the prefix sums over hours ≤ ``h`` (:meth:`ExperimentCells.cumulative`), exact when each
unit's events are aggregated in time order (late or out-of-order events shift a delta to
the hour of the event that caused it); the all-time totals are exact in any order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

import orjson

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["STAT_CODES", "AggregateStore", "Cell", "ExperimentCells"]

STAT_CODES = {
    "s": "sum",
    "q": "sum_sq",
    "ds": "den_sum",
    "dq": "den_sum_sq",
    "x": "cross_sum",
    "cs": "cov_sum",
    "cq": "cov_sum_sq",
    "cx": "cov_cross",
}
"""Hash field code of each statistic (fields are ``variant|metric|code[|segment|value]``)."""

_READ_ATTEMPTS = 5

Segment = tuple[str, str] | None
_CellKey = tuple[int | None, str, Segment]


@dataclass(frozen=True, slots=True)
class Cell:
    """Sufficient statistics of one variant x segment x metric (x hour); see the module doc."""

    variant: str
    segment: Segment
    metric: str
    hour: int | None
    n: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0
    den_sum: float = 0.0
    den_sum_sq: float = 0.0
    cross_sum: float = 0.0
    cov_sum: float = 0.0
    cov_sum_sq: float = 0.0
    cov_cross: float = 0.0

    def __add__(self, other: Cell) -> Cell:
        """Merge the numbers of two cells; keeps this cell's labels (hour ``None`` if differ)."""
        return Cell(
            variant=self.variant,
            segment=self.segment,
            metric=self.metric,
            hour=self.hour if self.hour == other.hour else None,
            n=self.n + other.n,
            **{name: getattr(self, name) + getattr(other, name) for name in _SUMS},
        )


_SUMS = tuple(
    f.name for f in fields(Cell) if f.name not in ("variant", "segment", "metric", "hour", "n")
)


@dataclass(frozen=True, slots=True)
class ExperimentCells:
    """All cells of one experiment: totals (``hour is None``) and hourly deltas."""

    experiment: str
    metrics: tuple[str, ...]
    cells: tuple[Cell, ...]

    @property
    def hours(self) -> list[int]:
        """Hours that have deltas, ascending."""
        return sorted({c.hour for c in self.cells if c.hour is not None})

    @property
    def variants(self) -> list[str]:
        return sorted({c.variant for c in self.cells})

    def totals(self) -> list[Cell]:
        """The all-time cells (``hour is None``)."""
        return [c for c in self.cells if c.hour is None]

    def cumulative(self, hour: int) -> list[Cell]:
        """Cells as of the end of ``hour``: prefix sums of the hourly deltas, ``hour=None``."""
        merged: dict[tuple[str, Segment, str], Cell] = {}
        for cell in self.cells:
            if cell.hour is None or cell.hour > hour:
                continue
            label = (cell.variant, cell.segment, cell.metric)
            base = merged.get(label)
            merged[label] = replace(cell, hour=None) if base is None else base + cell
        return [replace(c, hour=None) for c in merged.values()]

    def get(
        self, variant: str, metric: str, segment: Segment = None, hour: int | None = None
    ) -> Cell | None:
        for cell in self.cells:
            if (cell.variant, cell.metric, cell.segment, cell.hour) == (
                variant,
                metric,
                segment,
                hour,
            ):
                return cell
        return None

    def units(self, segment: Segment = None) -> dict[str, int]:
        """Units per variant (all-time) in the whole population or one segment cell."""
        out: dict[str, int] = {}
        for cell in self.cells:
            if cell.hour is None and cell.segment == segment and cell.variant not in out:
                out[cell.variant] = cell.n
        return out


def _pairs(flat: list[str]) -> Iterable[tuple[str, str]]:
    it = iter(flat)
    return zip(it, it, strict=True)


def _cells(hour: int | None, flat: list[str], metrics: list[str]) -> list[Cell]:
    units: dict[_CellKey, int] = {}
    sums: dict[_CellKey, dict[str, dict[str, float]]] = {}
    for field, value in _pairs(flat):
        parts = field.split("|", 4)
        if len(parts) not in (3, 5):
            continue
        variant, metric, code = parts[0], parts[1], parts[2]
        segment: Segment = (parts[3], parts[4]) if len(parts) == 5 else None
        where = (hour, variant, segment)
        if code == "n" and metric == "":
            units[where] = int(value)
            continue
        stat = STAT_CODES.get(code)
        if stat is None:
            continue
        if metric not in metrics:
            metrics.append(metric)
        sums.setdefault(where, {}).setdefault(metric, {})[stat] = float(value)
    out: list[Cell] = []
    for where in sorted(set(units) | set(sums), key=_order):
        by_metric = sums.get(where, {})
        for metric in metrics:
            out.append(
                Cell(
                    variant=where[1],
                    segment=where[2],
                    metric=metric,
                    hour=where[0],
                    n=units.get(where, 0),
                    **by_metric.get(metric, {}),
                )
            )
    return out


def _order(where: _CellKey) -> tuple[str, tuple[str, str]]:
    return where[1], where[2] or ("", "")


class AggregateStore:
    """Reads what the aggregator wrote (see the module docstring for every field's meaning)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._read = redis.register_script(lua("read_aggregates"))

    async def read(self, key: str, metrics: Iterable[str] | None = None) -> ExperimentCells:
        """Every cell of experiment ``key``; ``metrics`` (default: those the aggregator
        recorded) get a cell, zeros included, in every variant x segment that has units."""
        expected = sorted(int(h) for h in await self._redis.smembers(keys.aggregate_hours(key)))
        for _ in range(_READ_ATTEMPTS):
            answer = await self._read(
                keys=[
                    keys.aggregates(key),
                    keys.aggregate_hours(key),
                    keys.aggregation_meta(key),
                    *(keys.aggregates_hour(key, h) for h in expected),
                ],
                args=[],
            )
            present = sorted(int(h) for h in answer[0])
            if set(present) <= set(expected):
                break
            expected = present  # a new hour appeared between the two reads
        else:
            raise RuntimeError(f"hours of {key!r} keep changing; read again")
        names = list(metrics) if metrics is not None else []
        if metrics is None and answer[2]:
            names = [str(m) for m in orjson.loads(answer[2])]
        cells = _cells(None, answer[1], names)
        for hour, flat in zip(expected, answer[3:], strict=True):
            cells += _cells(hour, flat, names)
        return ExperimentCells(experiment=key, metrics=tuple(names), cells=tuple(cells))
