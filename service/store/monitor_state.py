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

    async def snapshots(self, experiment_keys: Sequence[str]) -> dict[str, str]:
        if not experiment_keys:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in experiment_keys:
                pipe.get(keys.metrics_snapshot(key))
            raws = await pipe.execute()
        return {k: str(raw) for k, raw in zip(experiment_keys, raws, strict=True) if raw}
