"""The experiment journal in Redis: one entry per ended experiment, kept forever.

``keys.journal_entries()`` maps an experiment key to its entry (JSON, written once),
``keys.journal_order()`` lists the keys in the order they ended, and
``keys.journal_lines()`` holds each model line's current baseline.

Backtest verdicts are a second list, ``keys.journal()``, indexed by entry id in
``keys.journal_index()``: a backtest with the same id (the digest of its inputs)
replaces its earlier entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["JournalStore"]


class JournalStore:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._add = redis.register_script(lua("journal_add"))
        self._upsert = redis.register_script(lua("journal_upsert"))

    async def add(self, experiment_key: str, entry: str) -> bool:
        """Store the entry unless the experiment already has one. True when written."""
        written = await self._add(
            keys=[keys.journal_entries(), keys.journal_order()], args=[experiment_key, entry]
        )
        return bool(written)

    async def get(self, experiment_key: str) -> str | None:
        raw = await self._redis.hget(keys.journal_entries(), experiment_key)
        return None if raw is None else str(raw)

    async def present(self, experiment_keys: list[str]) -> list[bool]:
        if not experiment_keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in experiment_keys:
                pipe.hexists(keys.journal_entries(), key)
            return [bool(x) for x in await pipe.execute()]

    async def all(self) -> list[str]:
        """Every entry, oldest first."""
        order = [str(k) for k in await self._redis.lrange(keys.journal_order(), 0, -1)]
        if not order:
            return []
        raws = await self._redis.hmget(keys.journal_entries(), order)
        return [str(raw) for raw in raws if raw is not None]

    async def set_line(self, line: str, baseline: str) -> None:
        await self._redis.hset(keys.journal_lines(), line, baseline)

    async def lines(self) -> dict[str, str]:
        raw = await self._redis.hgetall(keys.journal_lines())
        return {str(k): str(v) for k, v in raw.items()}

    async def upsert_backtest(self, entry_id: str, entry: Mapping[str, Any]) -> bool:
        """Append a backtest entry, or replace the one with the same id; True when added."""
        _, added = await self._upsert(
            keys=[keys.journal(), keys.journal_index()],
            args=[entry_id, orjson.dumps(entry).decode()],
        )
        return bool(added)

    async def backtests(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` backtest entries, oldest first."""
        raws = await self._redis.lrange(keys.journal(), -limit, -1)
        return [orjson.loads(r) for r in raws]
