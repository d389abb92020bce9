"""The guardrail monitor's shared state in Redis: leases, alert notices, metric snapshots.

A lease (``keys.lease(key, "monitor")``) makes one process at a time the monitor of an
experiment: taken with ``SET NX PX`` and a random token, renewed and released only by its
holder (compare-and-extend, compare-and-delete in Lua), so a crashed holder's lease just
expires. Notices remember which alerts were already sent, so several workers send each
webhook once. Snapshots are the monitor's latest Prometheus view of an experiment, which
every process renders on ``GET /metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.exceptions import ResponseError

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["MonitorState"]


class MonitorState:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._renew = redis.register_script(lua("lease_renew"))
        self._release = redis.register_script(lua("lease_release"))

    async def acquire(self, key: str, purpose: str, token: str, ttl_ms: int) -> bool:
        """Take the lease, or extend it if ``token`` already holds it. True when held."""
        name = keys.lease(key, purpose)
        if await self._redis.set(name, token, nx=True, px=ttl_ms):
            return True
        return bool(await self._renew(keys=[name], args=[token, ttl_ms]))

    async def release(self, key: str, purpose: str, token: str) -> bool:
        """Give the lease up if ``token`` still holds it (never someone else's)."""
        return bool(await self._release(keys=[keys.lease(key, purpose)], args=[token]))

    async def holder(self, key: str, purpose: str) -> str | None:
        raw = await self._redis.get(keys.lease(key, purpose))
        return None if raw is None else str(raw)

    async def first_notice(self, key: str, fingerprint: str, at: float) -> bool:
        """True the first time ``fingerprint`` is noticed for this experiment, then False."""
        return bool(await self._redis.hsetnx(keys.notified(key), fingerprint, repr(at)))

    async def put_snapshot(self, key: str, data: str) -> None:
        await self._redis.set(keys.metrics_snapshot(key), data)

    async def expire_snapshot(self, key: str, seconds: int) -> None:
        """Let an ended experiment's last snapshot linger ``seconds``, then vanish."""
        if seconds <= 0:
            await self._redis.delete(keys.metrics_snapshot(key))
        else:
            await self._redis.expire(keys.metrics_snapshot(key), seconds)

    async def oldest_unprocessed(self, experiment_key: str, group: str) -> float | None:
        """Unix time (from the entry id) of the oldest entry of the experiment's events or
        exposures stream that ``group`` has not acknowledged; None when all are."""
        oldest: list[int] = []
        for stream in (keys.events_stream(experiment_key), keys.exposures_stream(experiment_key)):
            entry_id = await self._oldest_in(stream, group)
            if entry_id is not None:
                oldest.append(int(entry_id.split("-", 1)[0]))
        return min(oldest) / 1000.0 if oldest else None

    async def _oldest_in(self, stream: str, group: str) -> str | None:
        try:
            groups = await self._redis.xinfo_groups(stream)
        except ResponseError:  # no stream yet
            return None
        info = next((g for g in groups if g.get("name") == group), None)
        if info is None:  # no aggregator ever read it: every entry is waiting
            first = await self._redis.xrange(stream, count=1)
            return str(first[0][0]) if first else None
        if int(info.get("pending", 0)) > 0:
            summary = await self._redis.xpending(stream, group)
            return str(summary["min"]) if summary.get("min") else None
        delivered = str(info.get("last-delivered-id", "0-0"))
        following = await self._redis.xrange(stream, min=f"({delivered}", count=1)
        return str(following[0][0]) if following else None

    async def snapshots(self, experiment_keys: Sequence[str]) -> dict[str, str]:
        if not experiment_keys:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in experiment_keys:
                pipe.get(keys.metrics_snapshot(key))
            raws = await pipe.execute()
        return {k: str(raw) for k, raw in zip(experiment_keys, raws, strict=True) if raw}
