"""Ingestion into Redis: dedup by event id, append to the experiment's stream, remember answers.

Each experiment's share of a batch is one Lua call (``ingest_events.lua``) that checks and
marks every event id and appends the new events as one stream entry, atomically: an event
id is in the stream at most once per dedup window (by arrival time), whatever the retries.
The ids are remembered as 12-byte entries (8 bytes of fingerprint + arrival second) packed
into the 65,536 fields of one hash per experiment, about 12-16 bytes per id once an
experiment has a million ids in its window (``loadtests/bench_ingest.py`` measures it).

Fingerprints are keyed: blake2b with the random salt stored in that hash, so the field an
id lands in cannot be predicted by a client, and no choice of ids makes one call's work grow
beyond what the same number of ordinary ids costs. The salt is created with the hash and
expires with it, so every process agrees on it and it never outlives the entries it keyed.

Answers are remembered in two places. The same Lua call that commits a share stores its
counts under the batch's call token (:class:`Call`): a retried call, by redis-py after a
timeout or by the client under the same ``Idempotency-Key``, gets the first counts back even
when the first answer never reached anyone. A batch with an ``Idempotency-Key`` also
*claims* the key before any work (:meth:`EventStore.claim`), so two bodies can never both
be accepted under one key, and keeps its whole answer there once it is complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from service.errors import Unavailable
from service.store import keys
from service.store.connection import RedisClient
from service.store.event_codec import StoredEvent, encode_events
from service.store.scripts import lua

__all__ = [
    "Call",
    "Claim",
    "EventStore",
    "IngestResult",
    "body_digest",
    "fingerprints",
]

_CALL_TTL_S = 60
"""How long the counts of a call without Idempotency-Key are kept: longer than redis-py's
retries of one command can take (4 attempts, 5 s socket timeout each)."""

_SETTLED_TTL_S = 300
"""Per-experiment counts of a keyed batch, once its whole answer is stored under the key:
kept a little longer for a concurrent twin of the same request that is still running."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(self.accepted + other.accepted, self.duplicates + other.duplicates)


@dataclass(frozen=True, slots=True)
class Call:
    """What one request's Lua calls answer to: counts are remembered under ``token`` for
    ``ttl_s``, for a request whose body has ``digest``."""

    token: str
    digest: str
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Claim:
    """What an ``Idempotency-Key`` held when it was claimed.

    ``new``: this request holds it now; ``pending``: the same body was claimed before and
    has no complete answer yet (a concurrent twin, or an attempt that died: doing the work
    again is safe); ``answered``: ``answer`` is the first answer; ``conflict``: another
    body holds the key.
    """

    state: Literal["new", "pending", "answered", "conflict"]
    answer: dict[str, Any] | None = None


def fingerprints(salt: str, event_ids: Iterable[str]) -> bytes:
    """10 bytes per id of blake2b keyed with ``salt`` (hex): 2 select the field, 8 are stored."""
    base = hashlib.blake2b(key=bytes.fromhex(salt), digest_size=10)
    out = []
    for event_id in event_ids:
        h = base.copy()
        h.update(event_id.encode())
        out.append(h.digest())
    return b"".join(out)


def body_digest(body: bytes, *parts: str) -> str:
    """Digest of a request body and the ``parts`` that change its meaning (query flags)."""
    h = hashlib.blake2b(body, digest_size=16)
    for part in parts:
        h.update(b"\0" + part.encode())
    return h.hexdigest()


def _token(client: str, idempotency_key: str) -> str:
    # Hashed so that any header value makes a well-formed key with one hash tag.
    return hashlib.blake2b(
        f"{client}\0{idempotency_key}".encode(), digest_size=16, person=b"sharpen-batch"
    ).hexdigest()


def _claim_key(client: str, idempotency_key: str) -> str:
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
        self._claim = redis.register_script(lua("claim_batch"))
        self._release = redis.register_script(lua("lease_release"))
        self._salts: dict[str, str] = {}

    def call(self, client: str, idempotency_key: str | None, digest: str) -> Call:
        """The :class:`Call` of one request: per key for the idempotency window, else its own."""
        if idempotency_key is None:
            return Call(uuid.uuid4().hex, digest, _CALL_TTL_S)
        return Call(_token(client, idempotency_key), digest, self._idempotency_window_s)

    async def append(
        self, key: str, event_ids: Sequence[str], events: Sequence[StoredEvent], call: Call
    ) -> IngestResult:
        """Append one experiment's events; raise :class:`Unavailable` if its backlog is full."""
        if len(event_ids) != len(events):
            raise ValueError("event_ids and events differ in length")
        if not events:
            return IngestResult(0, 0)
        data = encode_events(events)
        salt = self._salts.get(key) or secrets.token_hex(16)
        for _ in range(2):
            first, second = await self._ingest(
                keys=[
                    keys.events_stream(key),
                    keys.aggregation_meta(key),
                    keys.event_ids(key),
                    keys.idempotency(key, call.token),
                ],
                args=[
                    len(events),
                    fingerprints(salt, event_ids),
                    self._dedup_window_s,
                    self._max_backlog,
                    data,
                    salt,
                    call.digest,
                    call.ttl_s,
                ],
            )
            if int(first) != -2:
                break
            salt = str(second)  # the hash has its own salt: key the ids with it
        else:
            raise Unavailable(f"experiment {key!r}: dedup state changed meanwhile; retry")
        self._salts[key] = salt
        if int(first) == -1:
            raise Unavailable(
                f"experiment {key!r} has {int(second)} events waiting for aggregation "
                f"(limit {self._max_backlog}); retry later",
                retry_after_s=2,
            )
        return IngestResult(int(first), int(second))

    async def append_many(
        self, batches: Mapping[str, tuple[list[str], list[StoredEvent]]], call: Call
    ) -> IngestResult:
        """Append the shares of several experiments concurrently (one Lua call each)."""
        if len(batches) == 1:
            ((key, (ids, events)),) = batches.items()
            return await self.append(key, ids, events, call)
        results = await asyncio.gather(
            *(self.append(key, ids, events, call) for key, (ids, events) in batches.items())
        )
        total = IngestResult(0, 0)
        for result in results:
            total = total + result
        return total

    async def claim(self, client: str, idempotency_key: str, digest: str) -> Claim:
        """Claim this client's ``idempotency_key`` for a body with ``digest`` (atomically)."""
        prior = await self._claim(
            keys=[_claim_key(client, idempotency_key)],
            args=[_pending(digest), self._idempotency_window_s],
        )
        if prior is None:
            return Claim("new")
        record = orjson.loads(prior)
        if record.get("digest") != digest:
            return Claim("conflict")
        answer = record.get("answer")
        if answer is None and "accepted" in record:  # kept by a version before partial answers
            answer = {"accepted": record["accepted"], "duplicates": record["duplicates"]}
        if answer is None:
            return Claim("pending")
        return Claim("answered", answer)

    async def settle(
        self,
        client: str,
        idempotency_key: str,
        call: Call,
        answer: Mapping[str, Any],
        experiments: Iterable[str],
    ) -> None:
        """Keep a keyed batch's whole ``answer`` for the idempotency window; its
        per-experiment counts are not needed for long after that."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(
                _claim_key(client, idempotency_key),
                orjson.dumps({"digest": call.digest, "answer": answer}),
                ex=self._idempotency_window_s,
            )
            for key in experiments:
                pipe.expire(keys.idempotency(key, call.token), _SETTLED_TTL_S)
            await pipe.execute()

    async def release(self, client: str, idempotency_key: str, digest: str) -> None:
        """Give the key back when nothing was accepted (a 422): it was never used."""
        await self._release(keys=[_claim_key(client, idempotency_key)], args=[_pending(digest)])


def _pending(digest: str) -> bytes:
    return orjson.dumps({"digest": digest})
