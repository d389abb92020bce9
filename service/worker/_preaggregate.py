"""Turn a batch of stream entries into the compact input of ``apply_batch.lua``.

Pure (no I/O). The work per batch is O(events) here and O(units + cells) in Lua:

- unit-level experiments: events are grouped per unit and per time cell (an hour, or the
  spec's shorter look cadence: ``plan.cell_seconds``; within a unit and a cell, sums add up
  and a proportion's "any value > 0" is an OR), so the script reads and
  writes each unit's running totals once per batch;
- ``unit: request`` experiments: every event is its own unit, so whole cell vectors
  (n, then 8 sums per metric) are summed here and the script only adds them up.
"""

from __future__ import annotations

import gc
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


def _segments(values: list[str | None] | None, width: int) -> list[str | bool]:
    if not width:
        return []
    if values is None:
        return [False] * width
    return [False if v is None else v for v in values]


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each metric's inputs are, as (index, event value name) pairs."""

    width: int
    sums: tuple[tuple[int, str], ...]  # mean values and ratio numerators: summed
    flags: tuple[tuple[int, str], ...]  # proportions: 1 if any value > 0
    dens: tuple[tuple[int, str], ...]  # ratio denominators: summed
    covs: tuple[tuple[int, str], ...]  # CUPED covariates: first value wins

    @classmethod
    def of(cls, plan: AggregationPlan) -> _Layout:
        metrics = plan.metrics
        return cls(
            width=len(metrics),
            sums=tuple((m, x.value) for m, x in enumerate(metrics) if x.kind != "p"),
            flags=tuple((m, x.value) for m, x in enumerate(metrics) if x.kind == "p"),
            dens=tuple((m, x.denominator) for m, x in enumerate(metrics) if x.denominator),
            covs=tuple((m, x.covariate) for m, x in enumerate(metrics) if x.covariate),
        )


def prepare(plan: AggregationPlan, kind: StreamKind, entries: Sequence[Entry]) -> PreparedBatch:
    """The ``apply_batch.lua`` payload for ``entries`` (undecodable ones are set aside)."""
    # The objects built here form no cycles; the collections their allocations would
    # trigger cost about as much as the work itself.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _prepare(plan, kind, entries)
    finally:
        if paused:
            gc.enable()


def _prepare(plan: AggregationPlan, kind: StreamKind, entries: Sequence[Entry]) -> PreparedBatch:
    ids, events, backlog, rejected = _decode(plan, kind, entries)
    hour_index: dict[int, int] = {}
    units: list[list[Any]] = []
    cells: list[list[Any]] = []
    excluded = 0
    if plan.per_request:
        if kind == "events":
            excluded = _request_cells(plan, events, hour_index, cells)
    else:
        _unit_groups(plan, events, hour_index, units)
    counters = (
        {"backlog": -backlog, "aggregated": len(events), "excluded": excluded}
        if kind == "events"
        else {"exposures": len(events)}
    )
    payload = _encoder.encode(
        {
            "ids": ids,
            "counters": counters,
            "names": [m.name for m in plan.metrics],
            "kinds": [m.kind for m in plan.metrics],
            "variants": list(plan.variants),
            "segs": list(plan.segments),
            "decl": [list(values) for values in plan.declared],
            "limit": plan.segment_limit,
            "cands": plan.segment_candidates,
            "hours": list(hour_index),
            "units": units,
            "cells": cells,
        }
    )
    return PreparedBatch(ids, list(hour_index), payload, len(events), rejected)


def _unit_groups(
    plan: AggregationPlan,
    events: Sequence[StoredEvent],
    hour_index: dict[int, int],
    units: list[list[Any]],
) -> None:
    """Per unit: ``[unit_id, variant, excluded, segment values..., group count, groups...]``;
    a group is ``[hour index, y_1..y_M, d_1..d_M, x_1..x_M]`` (x false when none)."""
    layout = _Layout.of(plan)
    width = layout.width
    sums, flags, dens, covs = layout.sums, layout.flags, layout.dens, layout.covs
    blank = [0.0] * (2 * width) + [False] * width
    # unit id -> [variant, excluded, segment values, {hour index: group}]
    per_unit: dict[str, list[Any]] = {}
    admit = plan.admit_until
    for event in events:
        variant = event.variant if admit is None or event.ts <= admit else ""
        unit = per_unit.get(event.unit_id)
        if unit is None:
            unit = per_unit[event.unit_id] = [variant, 0, event.segments, {}]
        elif not unit[0] and variant:
            unit[0] = variant
        if not variant:
            unit[1] += 1
        hour = int(event.ts // plan.cell_seconds)
        hi = hour_index.get(hour)
        if hi is None:
            hi = hour_index[hour] = len(hour_index) + 1
        groups = unit[3]
        group = groups.get(hi)
        if group is None:
            group = groups[hi] = [hi, *blank]
        values = event.values
        if values:
            for m, name in sums:
                value = values.get(name)
                if value is not None:
                    group[1 + m] += value
            for m, name in flags:
                value = values.get(name)
                if value is not None and value > 0:
                    group[1 + m] = 1.0
            for m, name in dens:
                value = values.get(name)
                if value is not None:
                    group[1 + width + m] += value
        covariates = event.covariates
        if covariates:
            for m, name in covs:
                value = covariates.get(name)
                if value is not None and group[1 + 2 * width + m] is False:
                    group[1 + 2 * width + m] = value
    segment_count = len(plan.segments)
    hour_of = {i: hour for hour, i in hour_index.items()}
    for unit_id, (variant, excluded, segments, groups) in per_unit.items():
        flat: list[Any] = [unit_id, variant, excluded, *_segments(segments, segment_count)]
        flat.append(len(groups))
        if len(groups) == 1:
            flat += next(iter(groups.values()))
        else:
            for hi in sorted(groups, key=hour_of.__getitem__):
                flat += groups[hi]
        units.append(flat)


def _request_cells(
    plan: AggregationPlan,
    events: Sequence[StoredEvent],
    hour_index: dict[int, int],
    cells: list[list[Any]],
) -> int:
    """Per cell: ``[hour index, variant, segment values..., n, then s q ds dq x cs cq cx per
    metric]``; every event is a unit of its own."""
    metrics = plan.metrics
    size = 1 + 8 * len(metrics)
    vectors: dict[tuple[int, str, tuple[str | None, ...] | None], list[float]] = {}
    excluded = 0
    admit = plan.admit_until
    for event in events:
        if not event.variant or (admit is not None and event.ts > admit):
            excluded += 1
            continue
        hour = int(event.ts // plan.cell_seconds)
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
    segment_count = len(plan.segments)
    for (hi, variant, segments), vec in vectors.items():
        raw = _segments(None if segments is None else list(segments), segment_count)
        cells.append([hi, variant, *raw, int(vec[0]), *vec[1:]])
    return excluded
