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
* ``meta`` hash: created_at, last_record_at, accepted, duplicates, labels (late labels
  matched), labelled (records that ever carried a label, counted once each);
* ``reference`` and ``reference:rows`` strings: what the reference is (JSON) and its
  rows (base64 float32), written together by one script: replaced by an upload, or
  frozen once from the first records (only if there is none yet);
* ``settings`` string: per-model analysis settings (JSON);
* ``errors`` string: the latest analysis' lever of every labelled error (JSON).

``sharpen:models`` is the set of model names. Backtest verdicts go to the journal
(:mod:`service.store.journal`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = [
    "AddResult",
    "ModelInfo",
    "RecordStore",
]

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
    labelled: int
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
        self._reference = redis.register_script(lua("reference_set"))

    async def add(self, name: str, records: Sequence[Mapping[str, Any]]) -> AddResult:
        """Store new records (the first of each record_id wins), trimming the oldest."""
        args: list[str | int | float] = [self._max_records, self._clock()]
        for record in records:
            args.append(str(record["record_id"]))
            args.append(orjson.dumps(record).decode())
            args.append(1 if record.get("label") is not None else 0)
        accepted, duplicates, stored, has_ref = await self._add(
            keys=[
                keys.model_records(name),
                keys.model_order(name),
                keys.model_labels(name),
                keys.model_meta(name),
                keys.model_reference_rows(name),
                keys.model_watch_feed(name),
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
            keys=[
                keys.model_records(name),
                keys.model_labels(name),
                keys.model_meta(name),
                keys.model_watch_feed(name),
            ],
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
                pipe.exists(keys.model_reference_rows(name))
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
                    labelled=int(meta.get("labelled", 0)),
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

    async def reference(self, name: str) -> tuple[dict[str, Any], bytes] | None:
        """What the reference is (JSON) and its rows (bytes), or None."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.model_reference(name))
            pipe.get(keys.model_reference_rows(name))
            meta, rows = await pipe.execute()
        if meta is None or rows is None:
            return None
        data: dict[str, Any] = orjson.loads(meta)
        return data, base64.b64decode(rows)

    async def set_reference(
        self, name: str, meta: Mapping[str, Any], rows: bytes, *, replace: bool = True
    ) -> bool:
        """Store a reference; with ``replace=False`` only if the model has none yet."""
        written = await self._reference(
            keys=[keys.model_reference(name), keys.model_reference_rows(name)],
            args=[
                orjson.dumps(meta).decode(),
                base64.b64encode(rows).decode(),
                "replace" if replace else "nx",
            ],
        )
        return bool(written)

    async def settings(self, name: str) -> dict[str, Any]:
        raw = await self._redis.get(keys.model_settings(name))
        data: dict[str, Any] = orjson.loads(raw) if raw else {}
        return data

    async def set_settings(self, name: str, settings: Mapping[str, Any]) -> None:
        await self._redis.set(keys.model_settings(name), orjson.dumps(settings))

    async def save_errors(self, name: str, snapshot: Mapping[str, Any]) -> None:
        """Keep the latest analysis' per-error levers (replacing the previous ones)."""
        await self._redis.set(keys.model_errors(name), orjson.dumps(snapshot))

    async def errors(self, name: str) -> dict[str, Any] | None:
        raw = await self._redis.get(keys.model_errors(name))
        if raw is None:
            return None
        data: dict[str, Any] = orjson.loads(raw)
        return data
