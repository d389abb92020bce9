"""Turn a batch of stream entries into the compact input of ``apply_batch.lua``.

Pure (no I/O). The work per batch is O(events) here and O(units + cells) in Lua:

- unit-level experiments: events are grouped per unit and per hour (within a unit and an
  hour, sums add up and a proportion's "any value > 0" is an OR), so the script reads and
  writes each unit's running totals once per batch;
- ``unit: request`` experiments: every event is its own unit, so whole cell vectors
  (n, then 8 sums per metric) are summed here and the script only adds them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from service.store import (
    Entry,
    EntryError,
    StoredEvent,
    StreamKind,
    decode_events_entry,
    exposure_event,
)
from service.worker._plan import AggregationPlan

__all__ = ["PreparedBatch", "prepare"]

_HOUR_S = 3600
_encoder = msgspec.msgpack.Encoder()


@dataclass(slots=True)
class PreparedBatch:
    ids: list[str]
    hours: list[int]
    payload: bytes
    events: int
    """Events (or exposures) in the applied entries."""
    rejected: list[tuple[Entry, str, int]] = field(default_factory=list)
    """Entries that cannot be decoded: (entry, reason, events to take off the backlog)."""


@dataclass(slots=True)
class _Unit:
    variant: str
    segments: list[str | None] | None
    excluded: int = 0
    groups: dict[int, list[Any]] = field(default_factory=dict)


def _decode(
    plan: AggregationPlan, kind: StreamKind, entries: Sequence[Entry]
) -> tuple[list[str], list[StoredEvent], int, list[tuple[Entry, str, int]]]:
    ids: list[str] = []
    events: list[StoredEvent] = []
    backlog = 0
    rejected: list[tuple[Entry, str, int]] = []
    for entry in entries:
        try:
            if kind == "events":
                count = int(entry.fields.get("n", 0))
                decoded = decode_events_entry(entry.fields)
                if len(decoded) != count:
                    raise EntryError(f"events entry says n={count}, holds {len(decoded)}")
                events += decoded
                backlog += count
            else:
                exposure = exposure_event(entry.id, entry.fields, plan.segments, plan.value_chars)
                if exposure is not None:
                    events.append(exposure)
        except (EntryError, ValueError) as exc:
            owed = 0
            if kind == "events":
                try:
                    owed = max(int(entry.fields.get("n", 0)), 0)
                except ValueError:
                    owed = 0
            rejected.append((entry, str(exc), owed))
            continue
        ids.append(entry.id)
    return ids, events, backlog, rejected


def _falsy(segments: list[str | None] | None) -> list[str | bool] | bool:
    if segments is None:
        return False
    return [False if v is None else v for v in segments]


def prepare(plan: AggregationPlan, kind: StreamKind, entries: Sequence[Entry]) -> PreparedBatch:
    """The ``apply_batch.lua`` payload for ``entries`` (undecodable ones are set aside)."""
    ids, events, backlog, rejected = _decode(plan, kind, entries)
    hour_index: dict[int, int] = {}
    metrics = plan.metrics
    width = len(metrics)
    units: list[Any] = []
    cells: list[Any] = []
    excluded = 0
    if plan.per_request:
        if kind == "events":
            excluded = _request_cells(plan, events, hour_index, cells)
    else:
        per_unit: dict[str, _Unit] = {}
        for event in events:
            unit = per_unit.get(event.unit_id)
            if unit is None:
                unit = per_unit[event.unit_id] = _Unit(event.variant, event.segments)
            elif not unit.variant and event.variant:
                unit.variant = event.variant
            if not event.variant:
                unit.excluded += 1
            hour = int(event.ts // _HOUR_S)
            hi = hour_index.get(hour)
            if hi is None:
                hi = hour_index[hour] = len(hour_index) + 1
            group = unit.groups.get(hi)
            if group is None:
                group = unit.groups[hi] = [hi, False, False, False, hour]
            values, covariates = event.values, event.covariates
            if values:
                ys = group[1]
                if ys is False:
                    ys = group[1] = [0.0] * width
                for m, metric in enumerate(metrics):
                    value = values.get(metric.value)
                    if value is not None:
                        if metric.kind == "p":
                            if value > 0:
                                ys[m] = 1
                        else:
                            ys[m] += value
                    if metric.denominator is not None:
                        den = values.get(metric.denominator)
                        if den is not None:
                            ds = group[2]
                            if ds is False:
                                ds = group[2] = [0.0] * width
                            ds[m] += den
            if covariates:
                xs = group[3]
                for m, metric in enumerate(metrics):
                    if metric.covariate is not None:
                        x = covariates.get(metric.covariate)
                        if x is not None:
                            if xs is False:
                                xs = group[3] = [False] * width
                            if xs[m] is False:
                                xs[m] = x
        for unit_id, unit in per_unit.items():
            groups = sorted(unit.groups.values(), key=lambda g: g[4])
            units.append(
                [
                    unit_id,
                    unit.variant,
                    _falsy(unit.segments),
                    unit.excluded,
                    [g[:4] for g in groups],
                ]
            )
    counters = (
        {"backlog": -backlog, "aggregated": len(events), "excluded": excluded}
        if kind == "events"
        else {"exposures": len(events)}
    )
    payload = _encoder.encode(
        {
            "ids": ids,
            "counters": counters,
            "names": [m.name for m in metrics],
            "kinds": [m.kind for m in metrics],
            "segs": list(plan.segments),
            "limit": plan.segment_limit,
            "hours": list(hour_index),
            "units": units,
            "cells": cells,
        }
    )
    return PreparedBatch(ids, list(hour_index), payload, len(events), rejected)


def _request_cells(
    plan: AggregationPlan,
    events: Sequence[StoredEvent],
    hour_index: dict[int, int],
    cells: list[Any],
) -> int:
    metrics = plan.metrics
    size = 1 + 8 * len(metrics)
    vectors: dict[tuple[int, str, tuple[str | None, ...] | None], list[float]] = {}
    excluded = 0
    for event in events:
        if not event.variant:
            excluded += 1
            continue
        hour = int(event.ts // _HOUR_S)
        hi = hour_index.get(hour)
        if hi is None:
            hi = hour_index[hour] = len(hour_index) + 1
        where = (hi, event.variant, None if event.segments is None else tuple(event.segments))
        vec = vectors.get(where)
        if vec is None:
            vec = vectors[where] = [0.0] * size
        vec[0] += 1
        values, covariates = event.values, event.covariates
        for m, metric in enumerate(metrics):
            b = 1 + 8 * m
            y = values.get(metric.value, 0.0)
            if metric.kind == "p":
                y = 1.0 if y > 0 else 0.0
            elif metric.kind == "r":
                d = values.get(metric.denominator or "", 0.0)
                if d == 0:
                    y = 0.0
                vec[b + 2] += d
                vec[b + 3] += d * d
                vec[b + 4] += y * d
            vec[b] += y
            vec[b + 1] += y * y
            if metric.covariate is not None and covariates:
                x = covariates.get(metric.covariate)
                if x is not None:
                    vec[b + 5] += x
                    vec[b + 6] += x * x
                    vec[b + 7] += x * y
    for (hi, variant, segments), vec in vectors.items():
        raw = _falsy(None if segments is None else list(segments))
        cells.append([hi, variant, raw, [int(vec[0]), *vec[1:]]])
    return excluded
