"""What reached an experiment's Redis streams: the exposures and the events, as written."""

from __future__ import annotations

import redis

from service.store import keys
from service.store.event_codec import StoredEvent, decode_events_entry

__all__ = ["exposed", "tracked"]


def _entries(r: redis.Redis, stream: str) -> list[dict[str, str]]:
    entries: list[tuple[str, dict[str, str]]] = r.xrange(stream)  # type: ignore[assignment]
    return [fields for _, fields in entries]


def exposed(r: redis.Redis, experiment: str) -> list[tuple[str, str]]:
    """``(unit_id, variant)`` of every exposure of ``experiment``, oldest first
    (``r`` decodes responses)."""
    return [(f["unit_id"], f["variant"]) for f in _entries(r, keys.exposures_stream(experiment))]


def tracked(r: redis.Redis, experiment: str) -> list[StoredEvent]:
    """Every counted event of ``experiment``, oldest first (``r`` decodes responses)."""
    return [e for f in _entries(r, keys.events_stream(experiment)) for e in decode_events_entry(f)]
