"""From the feed to the time buckets: the incremental half of the model monitor.

Each pass, the holder of a model's lease reads the feed after its cursor, a bounded number
of items at a time, and turns them into bucket deltas:

* a new record adds ``n`` (and its own label's sums, if it came with one) to its cells in
  its hour and its day, and its inputs to the whole-population cell;
* a label adds the sums of the new label minus those of the label it replaces (the
  record's own, or an earlier late one), in the same cells.

One script writes the deltas, the state and the new cursor together, and only if the
cursor has not moved since it was read: two workers never apply an entry twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.analysis._frame import normalise
from service.modelwatch._contrib import (
    SEP,
    Scoring,
    add_into,
    cell_all,
    cell_any,
    cell_value,
    clean_text,
    input_stats,
    label_stats,
)
from service.modelwatch._tracker import ValueCounter, admit_names
from service.store.model_watch import FROZEN, BucketWrite, FeedEntry, WatchStore
from sharpen.core import canonical

__all__ = ["Drained", "Limits", "drain", "grain_index"]

HOUR, DAY = 3600, 86_400
_ENTRIES_PER_READ = 8
_MAX_CLASSES = 50
_LABELS_SEEN = 3


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of what one model's buckets keep (from the settings)."""

    attributes: int = 8
    features: int = 32
    values: int = 20
    hours_kept: int = 49
    days_kept: int = 42


@dataclass(slots=True)
class Drained:
    """What one drain did."""

    items: int = 0
    skipped: int = 0
    raced: bool = False


def grain_index(ts: float, grain: str) -> int:
    return math.floor(ts / (HOUR if grain == "h" else DAY))


def _json_list(raw: str | None) -> list[str]:
    value = orjson.loads(raw) if raw else []
    return [str(v) for v in value] if isinstance(value, list) else []


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str | None:
    text = canonical(value)
    return None if text is None else clean_text(text)


def _attributes(record: Mapping[str, Any]) -> dict[str, str]:
    given = record.get("attributes")
    if not isinstance(given, Mapping):
        return {}
    out = {}
    for name, value in given.items():
        text = _text(value)
        if text is not None:
            out[clean_text(str(name))] = text
    return out


@dataclass
class _State:
    cursor: str
    attrs: list[str]
    features: list[str]
    pclasses: list[str]
    labels_seen: list[str]
    counters: dict[str, ValueCounter]
    label_at: float
    skipped: int
    dirty: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, raw: Mapping[str, str], capacity: int) -> _State:
        attrs = _json_list(raw.get("attrs"))
        counters = {
            a: ValueCounter(capacity, orjson.loads(raw.get(f"t{SEP}{a}") or "{}")) for a in attrs
        }
        return cls(
            cursor=raw.get("cursor", ""),
            attrs=attrs,
            features=_json_list(raw.get("features")),
            pclasses=_json_list(raw.get("pclasses")),
            labels_seen=_json_list(raw.get("labels_seen")),
            counters=counters,
            label_at=float(raw.get("label_at") or 0.0),
            skipped=int(raw.get("skipped") or 0),
        )

    def dump(self) -> dict[str, str]:
        out = {
            "attrs": orjson.dumps(self.attrs).decode(),
            "features": orjson.dumps(self.features).decode(),
            "pclasses": orjson.dumps(self.pclasses).decode(),
            "labels_seen": orjson.dumps(self.labels_seen).decode(),
            "label_at": repr(self.label_at),
            "skipped": str(self.skipped),
        }
        for attr in self.dirty:
            out[f"t{SEP}{attr}"] = orjson.dumps(self.counters[attr].dump()).decode()
        return out


def _admit(state: _State, records: Iterable[Mapping[str, Any]], limits: Limits) -> None:
    records = list(records)
    state.attrs = admit_names(
        state.attrs, (a for r in records for a in _attributes(r)), limits.attributes
    )
    for attr in state.attrs:
        state.counters.setdefault(attr, ValueCounter(limits.values))
    names = (
        clean_text(str(n))
        for r in records
        if isinstance(r.get("features"), Mapping)
        for n in r["features"]
    )
    state.features = admit_names(state.features, names, limits.features)
    served = (
        clean_text(normalise(r["prediction"]) or "")
        for r in records
        if r.get("prediction") is not None and not _numeric(r.get("prediction"))
    )
    state.pclasses = admit_names(state.pclasses, served, _MAX_CLASSES)
    for record in records:
        for attr, value in _attributes(record).items():
            counter = state.counters.get(attr)
            if counter is not None:
                counter.add(value)
                state.dirty.add(attr)


def _seen_labels(state: _State, label: Any) -> None:
    seen = normalise(label)
    if seen and len(state.labels_seen) < _LABELS_SEEN:
        state.labels_seen = admit_names(state.labels_seen, [clean_text(seen)], _LABELS_SEEN)


def _cells(attributes: Mapping[str, str], frozen: Mapping[str, list[str]]) -> list[str]:
    out = [cell_all()]
    for attr, values in frozen.items():
        value = attributes.get(attr)
        if value is None:
            continue
        out.append(cell_any(attr))
        if value in values:
            out.append(cell_value(attr, value))
    return out


class _Deltas:
    """The bucket writes of one batch, keyed by (grain, index)."""

    def __init__(self, now: float, limits: Limits) -> None:
        self.now = now
        self.limits = limits
        self.frozen: dict[tuple[str, int], dict[str, list[str]]] = {}
        self.new: set[tuple[str, int]] = set()
        self.add: dict[tuple[str, int], dict[str, float]] = {}

    def buckets_of(self, ts: float) -> list[tuple[str, int]]:
        out = []
        if ts >= self.now - self.limits.hours_kept * HOUR:
            out.append(("h", grain_index(ts, "h")))
        if ts >= self.now - self.limits.days_kept * DAY:
            out.append(("d", grain_index(ts, "d")))
        return out

    def put(
        self,
        bucket: tuple[str, int],
        attributes: Mapping[str, str],
        cell_sums: Mapping[str, float],
        inputs: Mapping[str, float],
    ) -> None:
        target = self.add.setdefault(bucket, {})
        for cell in _cells(attributes, self.frozen[bucket]):
            add_into(target, {f"{stat}{SEP}{cell}": v for stat, v in cell_sums.items()})
        add_into(target, inputs)

    def writes(self) -> list[BucketWrite]:
        out = []
        for (grain, index), add in self.add.items():
            size = HOUR if grain == "h" else DAY
            keep = self.limits.hours_kept * HOUR if grain == "h" else self.limits.days_kept * DAY
            frozen = {}
            if (grain, index) in self.new:
                frozen[FROZEN] = orjson.dumps({"attrs": self.frozen[(grain, index)]}).decode()
            out.append(BucketWrite(grain, index, int((index + 1) * size + keep), add, frozen))
        return out


async def _freeze(
    store: WatchStore, name: str, deltas: _Deltas, buckets: set[tuple[str, int]], state: _State
) -> None:
    wanted = sorted(b for b in buckets if b not in deltas.frozen)
    for bucket, raw in zip(wanted, await store.frozen(name, wanted), strict=True):
        if raw is None:  # first write: it keeps rows for the values counted now
            deltas.frozen[bucket] = {a: state.counters[a].values() for a in state.attrs}
            deltas.new.add(bucket)
        else:
            attrs = orjson.loads(raw).get("attrs") or {}
            deltas.frozen[bucket] = {str(a): [str(v) for v in vs] for a, vs in attrs.items()}


async def drain(
    store: WatchStore,
    name: str,
    *,
    scoring: Scoring,
    limits: Limits,
    now: float,
    budget: int,
) -> Drained:
    """Apply feed items after the cursor until the feed is empty or ``budget`` items were
    applied (the rest waits for the next pass)."""
    result = Drained()
    state = _State.load(await store.state(name), limits.values)
    while result.items < budget:
        entries = await store.feed(name, state.cursor, _ENTRIES_PER_READ)
        if not entries:
            break
        applied, skipped = await _apply_entries(store, name, entries, state, scoring, limits, now)
        if not applied:
            result.raced = True
            break
        result.items += sum(len(e.items) for e in entries)
        result.skipped += skipped
    return result


async def _apply_entries(
    store: WatchStore,
    name: str,
    entries: list[FeedEntry],
    state: _State,
    scoring: Scoring,
    limits: Limits,
    now: float,
) -> tuple[bool, int]:
    ids: list[str] = []
    for entry in entries:
        ids += [str(i) if entry.kind == "r" else str(i[0]) for i in entry.items]
    unique = list(dict.fromkeys(ids))
    found = dict(zip(unique, await store.records(name, unique), strict=True))
    fresh = [found[str(i)] for e in entries if e.kind == "r" for i in e.items]
    _admit(state, (r for r in fresh if r is not None), limits)
    deltas = _Deltas(now, limits)
    touched = {
        b
        for r in found.values()
        if r is not None
        for b in deltas.buckets_of(float(r.get("timestamp") or 0.0))
    }
    await _freeze(store, name, deltas, touched, state)
    skipped = 0
    features, classes = set(state.features), set(state.pclasses)
    for entry in entries:
        for item in entry.items:
            record_id = str(item) if entry.kind == "r" else str(item[0])
            record = found.get(record_id)
            if record is None:  # trimmed before the monitor saw it
                skipped += 1
                continue
            attrs = _attributes(record)
            ts = float(record.get("timestamp") or 0.0)
            if entry.kind == "r":
                own = record.get("label")
                sums = {"n": 1.0, **label_stats(record, own, scoring)}
                inputs = input_stats(record, features, classes)
                if own is not None:
                    state.label_at = max(state.label_at, entry.at)
                    _seen_labels(state, own)
            else:
                _, before, after = item
                old = orjson.loads(before) if before else record.get("label")
                new = orjson.loads(after)
                sums = dict(label_stats(record, new, scoring))
                add_into(sums, label_stats(record, old, scoring), -1.0)
                inputs = {}
                state.label_at = max(state.label_at, entry.at)
                _seen_labels(state, new)
            for bucket in deltas.buckets_of(ts):
                deltas.put(bucket, attrs, sums, inputs)
    state.skipped += skipped
    done = await store.apply(
        name,
        expect=state.cursor,
        cursor=entries[-1].id,
        ids=[e.id for e in entries],
        backlog=sum(len(e.items) for e in entries),
        state=state.dump(),
        buckets=deltas.writes(),
    )
    if done:
        state.cursor = entries[-1].id
        state.dirty.clear()
    return done, skipped
