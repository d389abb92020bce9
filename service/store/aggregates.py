"""Read the sufficient statistics of an experiment as plain numbers, for the stats engine.

``await AggregateStore(redis).read(key)`` returns an :class:`ExperimentCells`: every cell
of the experiment, all-time totals (``hour=None``) and per-hour deltas, read atomically.
No Redis type leaks out: ints, floats, strings and tuples only.

What a cell means
-----------------
A cell is one ``variant`` x ``segment`` x ``metric`` (x ``hour``). ``segment`` is
``None`` for the whole population, else ``(segment name, value)`` for one value of a segment
of the spec; units missing the attribute are in no cell of that segment.

Which values get a row (see ``apply_batch.lua``): every value the spec declares
(``segments: [{name: country, values: [DE, FR]}]``), from the first unit; and up to
``segment_max_values`` other values per segment, the largest by units, re-ranked as units
arrive (a value counted with Space-Saving gets a row once it holds a slot, or outgrows the
smallest row twice over and takes its slot). The row of a ranked value covers the units
that entered while it held its row (since its latest promotion): randomization does not
depend on arrival time, so its variant comparison is unbiased for those units. Every other
unit with the attribute is in ``(segment name, "__other__")``, formed here as the segment's
'any' cell (every unit with the attribute) minus the rows shown: the statistics add up.
A unit's variant and segment values are fixed
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
timestamp. An experiment whose spec sets ``analysis.look_every`` below an hour has shorter
time cells: its ``hour`` is then ``int(ts // look_every)`` (the cell starts at
``hour * ExperimentCells.cell_seconds``); the keys and everything below are the same. An
hourly cell holds *deltas*: ``n`` counts the units that entered in that hour,
and the sums hold how much the hour's events changed the sums above (a unit's second event
changes ``sum_sq`` by ``(y1 + y2)² - y1²``). So the statistics as of the end of hour ``h``
are the prefix sums over hours ≤ ``h`` (:meth:`ExperimentCells.cumulative`), exact when each
unit's events are aggregated in time order (late or out-of-order events shift a delta to
the hour of the event that caused it); the all-time totals are exact in any order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

import orjson

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["OTHER", "STAT_CODES", "AggregateStore", "Cell", "ExperimentCells"]

OTHER = "__other__"
"""The segment value of the units with the attribute that are in no row shown."""

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
    cell_seconds: int = 3600
    """Width of the time cells: ``hour`` counts these since the epoch (see the module doc)."""

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


_Stored = tuple[str, tuple[str, ...]]
"""(variant, place): place ``()`` the population, ``(segment,)`` every unit with the
attribute (the segment's 'any' cell), ``(segment, tag)`` the row of one value."""


@dataclass(slots=True)
class _Hash:
    """One hash of cells as stored: unit counts and sums by (variant, place)."""

    units: dict[_Stored, int] = field(default_factory=dict)
    sums: dict[_Stored, dict[str, dict[str, float]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, flat: list[str], metrics: list[str]) -> _Hash:
        out = cls()
        for name, value in _pairs(flat):
            parts = name.split("|", 4)
            if len(parts) < 3:
                continue
            variant, metric, code = parts[0], parts[1], parts[2]
            where = (variant, tuple(parts[3:4]) + _tag(parts[4:]))
            if code == "n" and metric == "":
                out.units[where] = int(value)
                continue
            stat = STAT_CODES.get(code)
            if stat is None:
                continue
            if metric not in metrics:
                metrics.append(metric)
            out.sums.setdefault(where, {}).setdefault(metric, {})[stat] = float(value)
        return out

    def rows(self) -> set[tuple[str, str]]:
        """The (segment, tag) rows present (in the all-time hash: the rows shown). Fields of
        a plain value (written before rows were ranked, tag without ``|``) are not rows."""
        return {(p[0], p[1]) for _, p in {*self.units, *self.sums} if len(p) == 2 and "|" in p[1]}


def _tag(rest: list[str]) -> tuple[str, ...]:
    return (rest[0],) if rest else ()


def _value(tag: str) -> str:
    """The attribute value of a row tag ``d|value`` / ``epoch|value``."""
    return tag.split("|", 1)[1]


def _other(
    hashed: _Hash, variant: str, segment: str, shown: set[tuple[str, str]]
) -> tuple[int, dict[str, dict[str, float]]]:
    """``__other__``: the segment's 'any' cell minus every row shown (cells add up)."""
    anywhere = (variant, (segment,))
    n = hashed.units.get(anywhere, 0)
    sums = {m: dict(stats) for m, stats in hashed.sums.get(anywhere, {}).items()}
    for place in shown:
        if place[0] != segment:
            continue
        row = (variant, place)
        n -= hashed.units.get(row, 0)
        for metric, stats in hashed.sums.get(row, {}).items():
            mine = sums.setdefault(metric, {})
            for stat, value in stats.items():
                mine[stat] = mine.get(stat, 0.0) - value
    return n, sums


def _cells(
    hour: int | None,
    hashed: _Hash,
    metrics: list[str],
    shown: set[tuple[str, str]],
    others: set[tuple[str, str]],
) -> list[Cell]:
    """Cells of one hash. Rows not ``shown`` (rows that lost their place: kept in the hourly
    hashes, unread) are left out; ``__other__`` is formed for the (variant, segment) pairs
    in ``others`` (those whose all-time ``__other__`` has units)."""
    units: dict[_CellKey, int] = {}
    sums: dict[_CellKey, dict[str, dict[str, float]]] = {}
    for variant, place in {*hashed.units, *hashed.sums}:
        if not place:
            where: _CellKey = (hour, variant, None)
        elif len(place) == 2 and place in shown:
            where = (hour, variant, (place[0], _value(place[1])))
        else:
            continue
        stored = (variant, place)
        if stored in hashed.units:
            units[where] = hashed.units[stored]
        if stored in hashed.sums:
            sums[where] = hashed.sums[stored]
    for variant, segment in others:
        n, other_sums = _other(hashed, variant, segment, shown)
        if n or any(v for stats in other_sums.values() for v in stats.values()):
            where = (hour, variant, (segment, OTHER))
            units[where] = n
            sums[where] = other_sums
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

    async def read(
        self, key: str, metrics: Iterable[str] | None = None, *, cell_seconds: int = 3600
    ) -> ExperimentCells:
        """Every cell of experiment ``key``; ``metrics`` (default: those the aggregator
        recorded) get a cell, zeros included, in every variant x segment that has units.
        ``cell_seconds``: the width the aggregator used (the spec's ``analysis.cell_seconds``)."""
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
        totals = _Hash.parse(answer[1], names)
        shown = totals.rows()
        others = set()
        for variant, place in totals.units:
            if len(place) == 1 and _other(totals, variant, place[0], shown)[0] > 0:
                others.add((variant, place[0]))
        cells = _cells(None, totals, names, shown, others)
        for hour, flat in zip(expected, answer[3:], strict=True):
            cells += _cells(hour, _Hash.parse(flat, names), names, shown, others)
        return ExperimentCells(
            experiment=key, metrics=tuple(names), cells=tuple(cells), cell_seconds=cell_seconds
        )
