"""What the journal adds up to: cumulative improvement along each line, and which levers paid."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from service.journal._entry import Interval, JournalEntry

__all__ = ["Cumulative", "LeverSummary", "LineSummary", "lever_summaries", "line_summaries"]

UNSPECIFIED = "unspecified"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Cumulative(_Frozen):
    """Product of (1 + relative lift) of the shipped primaries, minus 1.

    ``lift.ci`` multiplies the interval ends: it covers the true cumulative lift whenever
    every experiment's interval covered its own, so its level is at least 1 - sum(alpha).
    """

    metric: str
    direction: str
    lift: Interval
    experiments: list[str]


class LineSummary(_Frozen):
    line: str
    baseline: dict[str, Any] | None
    experiments: int
    shipped: int
    cumulative: list[Cumulative]


class LeverSummary(_Frozen):
    lever: str
    experiments: int
    shipped: int
    rolled_back: int
    stopped: int
    win_rate: float
    mean_shipped_lift: float | None
    yearly_value: dict[str, Interval]


def _product(factors: Iterable[float | None]) -> float | None:
    total = 1.0
    for f in factors:
        if f is None or not math.isfinite(f):
            return None
        total *= 1.0 + f
    return total - 1.0


def _cumulative(shipped: list[JournalEntry]) -> list[Cumulative]:
    by_metric: dict[str, list[JournalEntry]] = {}
    for entry in shipped:
        if entry.primary is not None and entry.primary.relative.estimate is not None:
            by_metric.setdefault(entry.primary.metric, []).append(entry)
    out = []
    for metric, entries in by_metric.items():
        rel = [e.primary.relative for e in entries if e.primary is not None]
        out.append(
            Cumulative(
                metric=metric,
                direction=entries[-1].primary.direction if entries[-1].primary else "increase",
                lift=Interval(
                    estimate=_product(r.estimate for r in rel),
                    ci=(_product(r.ci[0] for r in rel), _product(r.ci[1] for r in rel)),
                ),
                experiments=[e.experiment for e in entries],
            )
        )
    return out


def line_summaries(
    entries: Iterable[JournalEntry], baselines: Mapping[str, Mapping[str, Any]]
) -> list[LineSummary]:
    """One summary per model line, entries taken in the order they ended."""
    by_line: dict[str, list[JournalEntry]] = {}
    for entry in entries:
        by_line.setdefault(entry.line, []).append(entry)
    for line in baselines:
        by_line.setdefault(line, [])
    out = []
    for line in sorted(by_line):
        items = by_line[line]
        shipped = [e for e in items if e.status == "shipped"]
        baseline = baselines.get(line)
        out.append(
            LineSummary(
                line=line,
                baseline=dict(baseline) if baseline is not None else None,
                experiments=len(items),
                shipped=len(shipped),
                cumulative=_cumulative(shipped),
            )
        )
    return out


def _sum(values: Iterable[float | None]) -> float | None:
    total = 0.0
    for v in values:
        if v is None:
            return None
        total += v
    return total


def lever_summaries(entries: Iterable[JournalEntry]) -> list[LeverSummary]:
    """Per lever (data, features, architecture, serving, threshold): how often it shipped."""
    by_lever: dict[str, list[JournalEntry]] = {}
    for entry in entries:
        by_lever.setdefault(entry.lever or UNSPECIFIED, []).append(entry)
    out = []
    for lever in sorted(by_lever):
        items = by_lever[lever]
        shipped = [e for e in items if e.status == "shipped"]
        lifts = [
            e.primary.relative.estimate
            for e in shipped
            if e.primary is not None and e.primary.relative.estimate is not None
        ]
        values: dict[str, list[Interval]] = {}
        for e in shipped:
            if e.value is not None:
                values.setdefault(e.value.currency, []).append(e.value.yearly)
        out.append(
            LeverSummary(
                lever=lever,
                experiments=len(items),
                shipped=len(shipped),
                rolled_back=sum(e.status == "rolled_back" for e in items),
                stopped=sum(e.status == "stopped" for e in items),
                win_rate=len(shipped) / len(items),
                mean_shipped_lift=sum(lifts) / len(lifts) if lifts else None,
                yearly_value={
                    currency: Interval(
                        estimate=_sum(v.estimate for v in vs),
                        ci=(_sum(v.ci[0] for v in vs), _sum(v.ci[1] for v in vs)),
                    )
                    for currency, vs in sorted(values.items())
                },
            )
        )
    return out
