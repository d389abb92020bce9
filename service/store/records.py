"""Prediction records of monitored models: add (dedup, trim), late labels, bulk read.

Layout per model (every key carries the ``{model:NAME}`` hash tag, so both Lua
scripts stay in one cluster slot):

* ``records`` hash: record_id -> record JSON (the stored shape: ``record_id``,
  ``timestamp`` as epoch seconds, ``prediction``, ``label``, ``confidence``,
  ``attributes``, ``features``, ``flags``, ``error_category``; nulls omitted);
* ``order`` list: record_ids oldest first; past ``max_records`` the oldest are
  trimmed with their labels, in the same script that adds;
* ``labels`` hash: record_id -> label JSON that arrived later (the latest wins and
  overrides the record's own label on read);
* ``meta`` hash: created_at, last_record_at, accepted, duplicates, labels;
* ``reference`` string: the frozen feature ranges (JSON), written once (SET NX).

``sharpen:models`` is the set of model names. The journal list (``keys.journal()``)
takes backtest entries until the full experiment journal exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["AddResult", "ModelInfo", "RecordStore", "append_journal", "read_journal"]

_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class AddResult:
    accepted: int
    duplicates: int
    stored: int
    has_reference: bool


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    records: int
    accepted: int
    duplicates: int
    labels: int
    created_at: float | None
    last_record_at: float | None
    has_reference: bool


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class RecordStore:
    """The only place prediction records are written and read."""

    def __init__(
        self, redis: RedisClient, *, max_records: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._max_records = max_records
        self._clock = clock
        self._add = redis.register_script(lua("records_add"))
        self._label = redis.register_script(lua("records_label"))

    async def add(self, name: str, records: Sequence[Mapping[str, Any]]) -> AddResult:
        """Store new records (the first of each record_id wins), trimming the oldest."""
        args: list[str | int | float] = [self._max_records, self._clock()]
        for record in records:
            args.append(str(record["record_id"]))
            args.append(orjson.dumps(record).decode())
        accepted, duplicates, stored, has_ref = await self._add(
            keys=[
                keys.model_records(name),
                keys.model_order(name),
                keys.model_labels(name),
                keys.model_meta(name),
                keys.model_reference(name),
            ],
            args=args,
        )
        if accepted:
            await self._redis.sadd(keys.models_index(), name)
        return AddResult(int(accepted), int(duplicates), int(stored), bool(has_ref))

    async def add_labels(self, name: str, labels: Sequence[tuple[str, Any]]) -> tuple[int, int]:
        """Attach labels to stored records: (matched, unmatched)."""
        args: list[str] = []
        for record_id, label in labels:
            args.append(record_id)
            args.append(orjson.dumps(label).decode())
        matched, unmatched = await self._label(
            keys=[keys.model_records(name), keys.model_labels(name), keys.model_meta(name)],
            args=args,
        )
        return int(matched), int(unmatched)

    async def exists(self, name: str) -> bool:
        return bool(await self._redis.sismember(keys.models_index(), name))

    async def names(self) -> list[str]:
        return sorted(str(m) for m in await self._redis.smembers(keys.models_index()))

    async def info(self, names: Sequence[str]) -> list[ModelInfo]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(keys.model_order(name))
                pipe.hgetall(keys.model_meta(name))
                pipe.exists(keys.model_reference(name))
            raw = await pipe.execute()
        out: list[ModelInfo] = []
        for i, name in enumerate(names):
            size, meta, has_ref = raw[3 * i : 3 * i + 3]
            out.append(
                ModelInfo(
                    name=name,
                    records=int(size),
                    accepted=int(meta.get("accepted", 0)),
                    duplicates=int(meta.get("duplicates", 0)),
                    labels=int(meta.get("labels", 0)),
                    created_at=_float(meta.get("created_at")),
                    last_record_at=_float(meta.get("last_record_at")),
                    has_reference=bool(has_ref),
                )
            )
        return out

    async def read(self, name: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Records oldest first (the first ``limit`` when given), late labels merged in."""
        stop = -1 if limit is None else limit - 1
        ids = [str(i) for i in await self._redis.lrange(keys.model_order(name), 0, stop)]
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), _CHUNK * 4):
            block = ids[start : start + _CHUNK * 4]
            async with self._redis.pipeline(transaction=False) as pipe:
                for j in range(0, len(block), _CHUNK):
                    chunk = block[j : j + _CHUNK]
                    pipe.hmget(keys.model_records(name), chunk)
                    pipe.hmget(keys.model_labels(name), chunk)
                replies = await pipe.execute()
            for records, labels in zip(replies[0::2], replies[1::2], strict=True):
                for raw, label in zip(records, labels, strict=True):
                    if raw is None:
                        continue  # trimmed between the two reads
                    record: dict[str, Any] = orjson.loads(raw)
                    if label is not None:
                        record["label"] = orjson.loads(label)
                    out.append(record)
        return out

    async def reference(self, name: str) -> dict[str, Any] | None:
        raw = await self._redis.get(keys.model_reference(name))
        if raw is None:
            return None
        data: dict[str, Any] = orjson.loads(raw)
        return data

    async def freeze_reference(self, name: str, reference: Mapping[str, Any]) -> bool:
        """Store the reference ranges unless some are already frozen (first writer wins)."""
        return bool(
            await self._redis.set(keys.model_reference(name), orjson.dumps(reference), nx=True)
        )


async def append_journal(redis: RedisClient, entry: Mapping[str, Any]) -> int:
    """Append one entry (JSON) to the journal list; returns its index."""
    length = await redis.rpush(keys.journal(), orjson.dumps(entry).decode())
    return int(length) - 1


async def read_journal(redis: RedisClient, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` journal entries, oldest first."""
    raws = await redis.lrange(keys.journal(), -limit, -1)
    return [orjson.loads(r) for r in raws]
