"""How much memory Redis uses (``INFO memory``), for ``/metrics`` and the operations guide."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.store.connection import RedisClient

__all__ = ["RedisMemory", "redis_memory"]


@dataclass(frozen=True, slots=True)
class RedisMemory:
    """Bytes: in use, the peak since start, the ``maxmemory`` limit (0: none). Summed over
    the masters of a cluster."""

    used: int
    peak: int
    limit: int


def _numbers(info: Mapping[str, Any]) -> tuple[int, int, int]:
    return (
        int(info.get("used_memory", 0)),
        int(info.get("used_memory_peak", 0)),
        int(info.get("maxmemory", 0)),
    )


async def redis_memory(redis: RedisClient) -> RedisMemory:
    info: Mapping[str, Any] = await redis.info("memory")
    if "used_memory" in info:
        return RedisMemory(*_numbers(info))
    # A cluster client answers per node: {node: {...}}.
    nodes = [_numbers(v) for v in info.values() if isinstance(v, Mapping)]
    return RedisMemory(*(sum(column) for column in zip(*nodes, strict=True)))
