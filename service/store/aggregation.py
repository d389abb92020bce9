"""The Redis side of the aggregator: consumer groups, reading, claiming, applying, trimming.

Every experiment has two streams, ``events`` (written by ``POST /v1/events``) and
``exposures`` (written by assignment), each read by the consumer group :data:`GROUP`.
Workers share a group, each under its own consumer name. A batch of entries is applied by
``apply_batch.lua``, which updates the statistics and XACKs in one atomic step, so a worker
that dies at any point neither loses nor double-counts: what it had not applied stays
pending and another worker claims it (XAUTOCLAIM) after ``min_idle_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.exceptions import ResponseError

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["GROUP", "AggregationStore", "Entry", "StreamKind", "StreamStats"]

GROUP = "sharpen-aggregator"

StreamKind = Literal["events", "exposures"]


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class StreamStats:
    """How far behind aggregation is for one experiment (plain numbers, for metrics).

    ``*_length`` counts stream entries (one per accepted batch share for events, one per
    exposure); ``*_pending`` entries delivered to a worker and not yet applied;
    ``*_undelivered`` entries no worker has read yet (``None`` when Redis cannot tell).
    ``backlog_events`` is the number of accepted events not yet aggregated, which
    ``ingest_max_backlog`` bounds. The counters are totals since the experiment began.
    """

    events_length: int
    events_pending: int
    events_undelivered: int | None
    exposures_length: int
    exposures_pending: int
    exposures_undelivered: int | None
    consumers: int
    backlog_events: int
    ingested: int
    duplicates: int
    aggregated: int
    exposures: int
    excluded: int
    units: int
    variant_mismatch: int
    dead: int


def _stream(key: str, kind: StreamKind) -> str:
    return keys.events_stream(key) if kind == "events" else keys.exposures_stream(key)


def _entries(raw: Sequence[Any]) -> list[Entry]:
    return [Entry(str(entry_id), dict(fields)) for entry_id, fields in raw if fields is not None]


class AggregationStore:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._apply = redis.register_script(lua("apply_batch"))
        self._trim = redis.register_script(lua("trim_stream"))
        self._dead = redis.register_script(lua("dead_letter"))

    async def ensure_groups(self, key: str) -> None:
        """Create the consumer groups (reading from the start) if they do not exist."""
        for kind in ("events", "exposures"):
            try:
                await self._redis.xgroup_create(_stream(key, kind), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(
        self, key: str, kind: StreamKind, consumer: str, count: int, block_ms: int
    ) -> list[Entry]:
        """New entries for ``consumer``, waiting up to ``block_ms`` for some."""
        stream = _stream(key, kind)
        raw = await self._redis.xreadgroup(
            GROUP, consumer, {stream: ">"}, count=count, block=block_ms
        )
        if not raw:
            return []
        if isinstance(raw, dict):  # RESP3
            return _entries(raw.get(stream, [[]])[0])
        return _entries(raw[0][1])

    async def claim(
        self, key: str, kind: StreamKind, consumer: str, min_idle_ms: int, count: int, cursor: str
    ) -> tuple[str, list[Entry]]:
        """Entries idle for ``min_idle_ms`` in other consumers (dead ones), from ``cursor``."""
        answer = await self._redis.xautoclaim(
            _stream(key, kind), GROUP, consumer, min_idle_ms, start_id=cursor, count=count
        )
        return str(answer[0]), _entries(answer[1])

    async def forget_consumers(self, key: str, kind: StreamKind, idle_ms: int) -> int:
        """Delete consumers idle for ``idle_ms`` with nothing pending (restarted workers leave
        them behind). Safe for a live one too: XREADGROUP recreates it, and it owned nothing."""
        stream = _stream(key, kind)
        removed = 0
        for consumer in await self._redis.xinfo_consumers(stream, GROUP):
            if int(consumer.get("pending", 0)) == 0 and int(consumer.get("idle", 0)) >= idle_ms:
                await self._redis.xgroup_delconsumer(stream, GROUP, str(consumer["name"]))
                removed += 1
        return removed

    async def apply(
        self,
        key: str,
        kind: StreamKind,
        consumer: str,
        hours: Sequence[int],
        payload: bytes,
        *,
        segments: Sequence[str],
    ) -> list[str]:
        """Apply a batch built by the worker (for an experiment with ``segments``); return the
        ids no longer ours (then nothing ran)."""
        ranking: list[str] = []
        for segment in segments:
            ranking += [keys.segment_ranked(key, segment), keys.segment_candidates(key, segment)]
        answer = await self._apply(
            keys=[
                _stream(key, kind),
                keys.units(key),
                keys.aggregates(key),
                keys.aggregate_hours(key),
                keys.segment_state(key),
                keys.aggregation_meta(key),
                *ranking,
                *(keys.aggregates_hour(key, hour) for hour in hours),
            ],
            args=[GROUP, consumer, payload],
        )
        if int(answer[0]) == 1:
            return []
        return [str(entry_id) for entry_id in answer[1:]]

    async def dead_letter(
        self, key: str, kind: StreamKind, consumer: str, entry: Entry, reason: str, backlog: int
    ) -> bool:
        """Park an entry that cannot be applied in the dead-letter stream and acknowledge it."""
        fields: list[str] = []
        for name, value in entry.fields.items():
            fields += [f"entry.{name}", value]
        done = await self._dead(
            keys=[_stream(key, kind), keys.dead_letters(key), keys.aggregation_meta(key)],
            args=[GROUP, consumer, entry.id, reason[:500], backlog, *fields],
        )
        return bool(done)

    async def trim(self, key: str, kind: StreamKind | None = None) -> int:
        """Drop entries every group has acknowledged (from one stream, or both)."""
        removed = 0
        for each in (kind,) if kind is not None else ("events", "exposures"):
            removed += int(await self._trim(keys=[_stream(key, each)], args=[]))
        return removed

    async def set_metrics(self, key: str, names: Sequence[str]) -> None:
        """Record which metrics the statistics hold (read back by ``AggregateStore``)."""
        await self._redis.hset(keys.aggregation_meta(key), "metrics", orjson.dumps(list(names)))

    async def stream_stats(self, key: str) -> StreamStats:
        """Lengths, pending counts and counters of one experiment's ingestion and aggregation."""
        events, exposures = keys.events_stream(key), keys.exposures_stream(key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(events)
            pipe.xlen(exposures)
            pipe.hgetall(keys.aggregation_meta(key))
            lengths_and_meta = await pipe.execute()
        groups = [await self._groups(events), await self._groups(exposures)]
        meta: dict[str, str] = lengths_and_meta[2]

        def counter(name: str) -> int:
            return int(meta.get(name, 0))

        return StreamStats(
            events_length=int(lengths_and_meta[0]),
            events_pending=groups[0][0],
            events_undelivered=groups[0][1],
            exposures_length=int(lengths_and_meta[1]),
            exposures_pending=groups[1][0],
            exposures_undelivered=groups[1][1],
            consumers=max(groups[0][2], groups[1][2]),
            backlog_events=counter("backlog"),
            ingested=counter("ingested"),
            duplicates=counter("duplicates"),
            aggregated=counter("aggregated"),
            exposures=counter("exposures"),
            excluded=counter("excluded"),
            units=counter("units"),
            variant_mismatch=counter("variant_mismatch"),
            dead=counter("dead"),
        )

    async def _groups(self, stream: str) -> tuple[int, int | None, int]:
        try:
            groups = await self._redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            return 0, None, 0
        for group in groups:
            if group.get("name") == GROUP:
                lag = group.get("lag")
                return (
                    int(group.get("pending", 0)),
                    None if lag is None else int(lag),
                    int(group.get("consumers", 0)),
                )
        return 0, None, 0
