"""Make aggregator cells from simulated per-unit data, the way the aggregator sums them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from service.store.aggregates import Cell, ExperimentCells

Segment = tuple[str, str] | None


@dataclass
class Units:
    """Per-unit rows: variant, hour, segment values, and per-metric (y, d) values."""

    variant: list[str] = field(default_factory=list)
    hour: list[int] = field(default_factory=list)
    attrs: list[dict[str, str]] = field(default_factory=list)
    values: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))

    def add(
        self, variant: str, hour: int, attrs: dict[str, str], values: dict[str, tuple[float, float]]
    ) -> None:
        self.variant.append(variant)
        self.hour.append(hour)
        self.attrs.append(attrs)
        for name, yd in values.items():
            self.values[name].append(yd)


def to_cells(key: str, units: Units, segments: list[str]) -> ExperimentCells:
    sums: dict[tuple[str, Segment, str, int | None], np.ndarray] = defaultdict(lambda: np.zeros(6))
    metrics = sorted(units.values)
    for i, variant in enumerate(units.variant):
        wheres: list[Segment] = [None] + [
            (s, units.attrs[i][s]) for s in segments if s in units.attrs[i]
        ]
        for metric in metrics:
            y, d = units.values[metric][i]
            vec = np.array([1, y, y * y, d, d * d, y * d])
            for where in wheres:
                sums[(variant, where, metric, None)] += vec
                sums[(variant, where, metric, units.hour[i])] += vec
    cells = [
        Cell(
            variant=v,
            segment=s,
            metric=m,
            hour=h,
            n=int(vec[0]),
            sum=float(vec[1]),
            sum_sq=float(vec[2]),
            den_sum=float(vec[3]),
            den_sum_sq=float(vec[4]),
            cross_sum=float(vec[5]),
        )
        for (v, s, m, h), vec in sums.items()
    ]
    return ExperimentCells(experiment=key, metrics=tuple(metrics), cells=tuple(cells))
