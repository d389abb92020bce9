"""The model monitor's Redis side: its feed, its time buckets, its state and its reports.

* the feed (``keys.model_watch_feed``): one entry per accepted records batch (``k=r``,
  ``ids``: JSON list) or matched labels batch (``k=l``, ``items``: JSON list of
  ``[record_id, replaced late label JSON or false, new label JSON]``), written by the
  records and labels scripts in the same call that stores them, so nothing accepted is
  missed; ``meta.mw_backlog`` counts the items not yet applied;
* buckets (``keys.model_watch_bucket``): sums per hour and per day of prediction time
  (fields in ``service.modelwatch._contrib``), plus ``#F``: the cells the bucket keeps
  (JSON), fixed when the bucket is first written so that a label arriving later always
  lands in the cells its record was counted in;
* state (``keys.model_watch_state``): ``cursor`` (last feed entry applied), ``attrs``,
  ``features``, ``classes``, ``labels_seen``, ``pclasses`` (JSON), ``t\\x1f<attribute>``
  (value counters, JSON), ``label_at`` (arrival of the latest label), ``skipped``;
* the latest report, its Prometheus view (``metrics``), its daily summaries
  (``history``) and the alert notices.

Every key carries the ``{model:NAME}`` hash tag, so the apply script stays in one slot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["BucketWrite", "FeedEntry", "WatchStore"]

FROZEN = "#F"
_encoder = msgspec.msgpack.Encoder()


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One feed entry: its id (ms-seq), kind (``r`` records, ``l`` labels) and items."""

    id: str
    kind: str
    items: list[Any]

    @property
    def at(self) -> float:
        """When the entry was written (Unix seconds, from its id)."""
        return int(self.id.split("-", 1)[0]) / 1000.0


@dataclass(frozen=True, slots=True)
class BucketWrite:
    grain: str
    index: int
    expire_at: int
    add: Mapping[str, float]
    set: Mapping[str, str]


class WatchStore:
    """The only place the model monitor reads and writes Redis."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._apply = redis.register_script(lua("model_watch_apply"))

    async def feed(self, name: str, after: str, count: int) -> list[FeedEntry]:
        """Up to ``count`` entries after ``after`` ('' = from the start), oldest first."""
        start = f"({after}" if after else "-"
        raw = await self._redis.xrange(keys.model_watch_feed(name), min=start, count=count)
        out = []
        for entry_id, fields in raw or []:
            fields = fields or {}
            kind = str(fields.get("k", ""))
            body = fields.get("ids") if kind == "r" else fields.get("items")
            items = orjson.loads(body) if body else []
            out.append(FeedEntry(str(entry_id), kind, items if isinstance(items, list) else []))
        return out

    async def feed_length(self, name: str) -> int:
        return int(await self._redis.xlen(keys.model_watch_feed(name)))

    async def backlog(self, name: str) -> int:
        """Feed items (records and labels) not yet applied to the buckets."""
        raw = await self._redis.hget(keys.model_meta(name), "mw_backlog")
        return max(int(raw or 0), 0)

    async def records(self, name: str, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The stored records (their own label only, never a late one); None if trimmed."""
        if not ids:
            return []
        raws = await self._redis.hmget(keys.model_records(name), list(ids))
        return [None if raw is None else orjson.loads(raw) for raw in raws]

    async def state(self, name: str) -> dict[str, str]:
        raw = await self._redis.hgetall(keys.model_watch_state(name))
        return {str(k): str(v) for k, v in raw.items()}

    async def frozen(self, name: str, buckets: Sequence[tuple[str, int]]) -> list[str | None]:
        """The ``#F`` field of each (grain, index) bucket, None where not written yet."""
        if not buckets:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for grain, index in buckets:
                pipe.hget(keys.model_watch_bucket(name, grain, index), FROZEN)
            raws = await pipe.execute()
        return [None if r is None else str(r) for r in raws]

    async def apply(
        self,
        name: str,
        *,
        expect: str,
        cursor: str,
        ids: Sequence[str],
        backlog: int,
        state: Mapping[str, str],
        buckets: Sequence[BucketWrite],
    ) -> bool:
        """Write one batch atomically; False (nothing written) if the cursor moved."""
        payload = {
            "expect": expect,
            "cursor": cursor,
            "ids": list(ids),
            "backlog": backlog,
            "state": dict(state),
            "buckets": [
                {"at": b.expire_at, "add": dict(b.add), "set": dict(b.set)} for b in buckets
            ],
        }
        done = await self._apply(
            keys=[
                keys.model_watch_state(name),
                keys.model_watch_feed(name),
                keys.model_meta(name),
                *(keys.model_watch_bucket(name, b.grain, b.index) for b in buckets),
            ],
            args=[_encoder.encode(payload)],
        )
        return bool(done)

    async def buckets(
        self, name: str, grain: str, indices: Sequence[int]
    ) -> dict[int, dict[str, str]]:
        """The raw hashes of the buckets that exist among ``indices``."""
        if not indices:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for index in indices:
                pipe.hgetall(keys.model_watch_bucket(name, grain, index))
            raws = await pipe.execute()
        return {i: dict(raw) for i, raw in zip(indices, raws, strict=True) if raw}

    async def put_report(
        self, name: str, report: Mapping[str, Any], day: int, metrics: Mapping[str, Any]
    ) -> None:
        """Keep the latest report, its Prometheus view (``metrics``) and, as the day's
        summary, its ``summary`` block."""
        history = keys.model_watch_history(name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.model_watch_report(name), orjson.dumps(report))
            pipe.set(keys.model_watch_metrics(name), orjson.dumps(metrics))
            pipe.hset(history, str(day), orjson.dumps(report.get("summary") or {}))
            await pipe.execute()

    async def trim_history(self, name: str, keep_from_day: int) -> None:
        history = keys.model_watch_history(name)
        old = [d for d in await self._redis.hkeys(history) if int(d) < keep_from_day]
        if old:
            await self._redis.hdel(history, *old)

    async def report(self, name: str) -> dict[str, Any] | None:
        raw = await self._redis.get(keys.model_watch_report(name))
        if raw is None:
            return None
        data: dict[str, Any] = orjson.loads(raw)
        return data

    async def reports(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not names:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(keys.model_watch_report(name))
            raws = await pipe.execute()
        return {n: orjson.loads(r) for n, r in zip(names, raws, strict=True) if r}

    async def metrics(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The Prometheus views of ``names`` that exist."""
        if not names:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(keys.model_watch_metrics(name))
            raws = await pipe.execute()
        return {n: orjson.loads(r) for n, r in zip(names, raws, strict=True) if r}

    async def history(self, name: str) -> dict[int, dict[str, Any]]:
        """Day -> the summary of that day's last report."""
        raw = await self._redis.hgetall(keys.model_watch_history(name))
        return {int(day): orjson.loads(body) for day, body in raw.items()}

    async def first_notice(self, name: str, fingerprint: str, at: float, ttl_s: int) -> bool:
        """True the first time ``fingerprint`` is noticed for this model, then False."""
        key = keys.model_watch_notified(name)
        added = bool(await self._redis.hsetnx(key, fingerprint, repr(at)))
        if added:
            await self._redis.expire(key, ttl_s)
        return added
