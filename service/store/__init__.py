"""Everything that touches Redis. Nothing outside this package talks to Redis."""

from __future__ import annotations

from service.store.aggregates import AggregateStore, Cell, ExperimentCells
from service.store.aggregation import GROUP, AggregationStore, Entry, StreamKind, StreamStats
from service.store.connection import RedisClient, RedisSettings, close, connect
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
    "Entry",
    "EntryError",
    "EventStore",
    "ExperimentCells",
    "ExperimentStore",
    "IngestResult",
    "RedisClient",
    "RedisSettings",
    "StoredEvent",
    "StreamKind",
    "StreamStats",
    "body_digest",
    "close",
    "connect",
    "decode_events_entry",
    "exposure_event",
    "segment_values",
]
