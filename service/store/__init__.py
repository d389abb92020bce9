"""Everything that touches Redis. Nothing outside this package talks to Redis."""

from __future__ import annotations

from service.store.connection import RedisClient, RedisSettings, close, connect
from service.store.experiments import BUCKETS, ExperimentStore

__all__ = ["BUCKETS", "ExperimentStore", "RedisClient", "RedisSettings", "close", "connect"]
