"""Everything that touches Redis. Nothing outside this package sends Redis a command or
imports ``redis``: others hold the client (``RedisClient``) to hand to a store, and catch
the errors re-exported here."""

from __future__ import annotations

from service.store.aggregates import AggregateStore, Cell, ExperimentCells
from service.store.aggregation import GROUP, AggregationStore, Entry, StreamKind, StreamStats
from service.store.connection import (
    ClusterDownError,
    ReadOnlyError,
    RedisClient,
    RedisConnectionError,
    RedisError,
    RedisSettings,
    RedisTimeoutError,
    ResponseError,
    TryAgainError,
    close,
    connect,
    ping,
)
from service.store.event_codec import (
    EntryError,
    StoredEvent,
    decode_events_entry,
    exposure_event,
    segment_values,
)
from service.store.events import Call, Claim, EventStore, IngestResult, body_digest
from service.store.experiments import BUCKETS, ExperimentStore

__all__ = [
    "BUCKETS",
    "GROUP",
    "AggregateStore",
    "AggregationStore",
    "Call",
    "Cell",
    "Claim",
    "ClusterDownError",
    "Entry",
    "EntryError",
    "EventStore",
    "ExperimentCells",
    "ExperimentStore",
    "IngestResult",
    "ReadOnlyError",
    "RedisClient",
    "RedisConnectionError",
    "RedisError",
    "RedisSettings",
    "RedisTimeoutError",
    "ResponseError",
    "StoredEvent",
    "StreamKind",
    "StreamStats",
    "TryAgainError",
    "body_digest",
    "close",
    "connect",
    "decode_events_entry",
    "exposure_event",
    "ping",
    "segment_values",
]
