"""Retention: an ended experiment's Redis state is deleted a while after it ends.

``SHARPEN_EXPERIMENT_STATE_RETENTION_S`` after ``ended_at`` (the aggregator checks at
every full refresh), every key of :func:`keys.experiment_state` and the hourly statistics
go; the spec, audit trail and spec versions stay, and so does the journal entry written
when the experiment ended (its final results). A marker (``keys.state_deleted``) records
when, so that results then say the statistics were deleted rather than show zeros.
Deleting is idempotent: a pass that dies half way is finished by the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["Deleted", "StateRetention"]

_KEYS_PER_CALL = 500


@dataclass(frozen=True, slots=True)
class Deleted:
    """An experiment whose state was deleted: when, and whether it is finished."""

    at: float
    done: bool


class StateRetention:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._purge = redis.register_script(lua("purge_state"))

    async def deleted(self, key: str) -> Deleted | None:
        """When ``key``'s state was deleted, or ``None`` if it was not."""
        raw = await self._redis.hgetall(keys.state_deleted(key))
        if not raw or "at" not in raw:
            return None
        return Deleted(at=float(raw["at"]), done=raw.get("done") == "1")

    async def delete(self, key: str, segments: Sequence[str], now: float) -> int:
        """Delete the state of experiment ``key`` (with these segments); keys deleted."""
        hours = sorted(await self._redis.smembers(keys.aggregate_hours(key)), key=int)
        # Hourly hashes first: the set listing them goes with the last call.
        doomed = [keys.aggregates_hour(key, int(h)) for h in hours]
        doomed += keys.experiment_state(key, segments)
        deleted = 0
        for start in range(0, len(doomed), _KEYS_PER_CALL):
            chunk = doomed[start : start + _KEYS_PER_CALL]
            last = start + _KEYS_PER_CALL >= len(doomed)
            deleted += int(
                await self._purge(
                    keys=[keys.state_deleted(key), *chunk], args=[repr(now), "1" if last else "0"]
                )
            )
        return deleted
