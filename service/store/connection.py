"""Open and close the Redis connection (single node or Cluster) with retries; the Redis
errors other packages catch (they import them from here, never from ``redis``)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "ClusterDownError",
    "ReadOnlyError",
    "RedisClient",
    "RedisConnectionError",
    "RedisError",
    "RedisSettings",
    "RedisTimeoutError",
    "ResponseError",
    "TryAgainError",
    "close",
    "connect",
    "ping",
]

log = logging.getLogger("sharpen.store")

# A cluster client speaks the same commands; code is written against the single-node type.
RedisClient = Redis


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    cluster: bool = False
    connect_attempts: int = 20
    socket_timeout_s: float = 5.0
    max_connections: int = 64


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.01), retries=3)


async def connect(settings: RedisSettings) -> RedisClient:
    """Connect, ping, and retry with backoff (one log line a retry) before giving up."""
    client: RedisClient
    if settings.cluster:
        client = cast(
            Redis,
            RedisCluster.from_url(
                settings.url,
                decode_responses=True,
                socket_timeout=settings.socket_timeout_s,
                retry=_retry(),
            ),
        )
    else:
        client = Redis.from_url(
            settings.url,
            decode_responses=True,
            socket_timeout=settings.socket_timeout_s,
            socket_connect_timeout=settings.socket_timeout_s,
            retry=_retry(),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            max_connections=settings.max_connections,
            health_check_interval=30,
        )
    delay = 0.05
    for attempt in range(1, settings.connect_attempts + 1):
        try:
            await client.ping()
            return client
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if attempt == settings.connect_attempts:
                await close(client)
                raise
            log.warning("redis not reachable (attempt %d): %s", attempt, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")


async def close(client: RedisClient) -> None:
    await client.aclose()


async def ping(client: RedisClient) -> None:
    """Raises RedisError or OSError when Redis does not answer."""
    await client.ping()
