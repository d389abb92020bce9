"""Ingestion into Redis: dedup by event id, append to the experiment's stream, remember answers.

Each experiment's share of a batch is one Lua call (``ingest_events.lua``) that checks and
marks every event id and appends the new events as one stream entry, atomically: an event
id is in the stream at most once per dedup window (by arrival time), whatever the retries.
The ids are remembered as 12-byte entries (8 bytes of fingerprint + arrival second) packed
into the 65,536 fields of one hash per experiment, about 12-16 bytes per id once an
experiment has a million ids in its window (``loadtests/bench_ingest.py`` measures it).
A batch's answer is remembered under its ``Idempotency-Key`` so that a retried request
gets the first answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import mmh3
import orjson

from service.errors import Unavailable
from service.store import keys
from service.store.connection import RedisClient
from service.store.event_codec import StoredEvent, encode_events
from service.store.scripts import lua

__all__ = ["EventStore", "IngestResult", "Remembered", "body_digest", "fingerprint"]


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(self.accepted + other.accepted, self.duplicates + other.duplicates)

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "duplicates": self.duplicates}


@dataclass(frozen=True, slots=True)
class Remembered:
    """The first answer to an idempotency key, and a digest of the body it answered."""

    digest: str
    result: IngestResult


def fingerprint(event_id: str) -> bytes:
    """10 bytes of the event id's murmur3 x64-128 hash: 2 select the field, 8 are stored."""
    return mmh3.hash_bytes(event_id)[:10]


def body_digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _idem_key(client: str, idempotency_key: str) -> str:
    # Hashed so that any header value makes a well-formed key with one hash tag.
    token = hashlib.blake2b(idempotency_key.encode(), digest_size=16).hexdigest()
    return keys.batch_idempotency(client, token)


class EventStore:
    """Appends validated events to their experiments' streams (see the module docstring)."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        dedup_window_s: int,
        max_backlog: int,
        idempotency_window_s: int,
    ) -> None:
        self._redis = redis
        self._dedup_window_s = dedup_window_s
        self._max_backlog = max_backlog
        self._idempotency_window_s = idempotency_window_s
        self._ingest = redis.register_script(lua("ingest_events"))

    async def append(
        self, key: str, event_ids: Sequence[str], events: Sequence[StoredEvent]
    ) -> IngestResult:
        """Append one experiment's events; raise :class:`Unavailable` if its backlog is full."""
        if len(event_ids) != len(events):
            raise ValueError("event_ids and events differ in length")
        if not events:
            return IngestResult(0, 0)
        fps = b"".join([fingerprint(event_id) for event_id in event_ids])
        accepted, second = await self._ingest(
            keys=[keys.events_stream(key), keys.aggregation_meta(key), keys.event_ids(key)],
            args=[
                len(events),
                fps,
                self._dedup_window_s,
                self._max_backlog,
                encode_events(events),
            ],
        )
        if int(accepted) < 0:
            raise Unavailable(
                f"experiment {key!r} has {int(second)} events waiting for aggregation "
                f"(limit {self._max_backlog}); retry later",
                retry_after_s=2,
            )
        return IngestResult(int(accepted), int(second))

    async def append_many(
        self, batches: dict[str, tuple[list[str], list[StoredEvent]]]
    ) -> IngestResult:
        """Append the shares of several experiments concurrently (one Lua call each)."""
        if len(batches) == 1:
            ((key, (ids, events)),) = batches.items()
            return await self.append(key, ids, events)
        results = await asyncio.gather(
            *(self.append(key, ids, events) for key, (ids, events) in batches.items())
        )
        total = IngestResult(0, 0)
        for result in results:
            total = total + result
        return total

    async def recall(self, client: str, idempotency_key: str) -> Remembered | None:
        """The remembered answer for this client's idempotency key, if any."""
        raw = await self._redis.get(_idem_key(client, idempotency_key))
        if raw is None:
            return None
        data = orjson.loads(raw)
        return Remembered(data["digest"], IngestResult(data["accepted"], data["duplicates"]))

    async def remember(
        self, client: str, idempotency_key: str, digest: str, result: IngestResult
    ) -> None:
        """Keep the first answer for the idempotency window (a concurrent twin does not win)."""
        value = orjson.dumps({"digest": digest, **result.as_dict()})
        await self._redis.set(
            _idem_key(client, idempotency_key), value, ex=self._idempotency_window_s, nx=True
        )
