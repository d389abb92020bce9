"""Ingestion of one ``POST /v1/events`` body: decode (msgspec, bounded), check every event
against its experiment (cached targets), append the valid ones, answer; with an
idempotency key, claim it first and settle it with the answer (see
``service/store/events.py`` for how a committed batch whose answer was lost is answered).

:func:`ingest` is what the route calls; ``service.components.add_ingestion`` wires the
stores and the targets cache it uses.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from service.bodies import TooManyItems, off_loop
from service.errors import MAX_DETAILS, Conflict, FieldError, ValidationFailed, field_error
from service.ingestion._checks import Checked, Target, Targets, check_events
from service.ingestion._decode import Decoded, decode_events
from service.runtime import Runtime
from service.settings import Settings
from service.store import Call, EventStore, body_digest

__all__ = ["ingest"]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a batch's objects are built (no await inside): they form no
    cycles, and the collections their allocations trigger nearly double the batch's cost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _checked(
    decoded: Decoded, targets: Mapping[str, Target], settings: Settings, now: float
) -> Checked:
    with _gc_paused():
        return check_events(decoded.events, targets, settings, now)


async def _validated(
    runtime: Runtime, targets: Targets, body: bytes
) -> tuple[Checked, list[FieldError], int]:
    """The batch's valid events by experiment, every problem (by index), the events' count."""
    settings = runtime.settings
    try:
        with _gc_paused():
            decoded = decode_events(body, settings)
    except TooManyItems:
        # At least this many were refused (the rest were not even counted).
        runtime.metrics.events_rejected.labels("too_large").inc(settings.events_max_batch + 1)
        raise
    now = time.time()
    names = {e.experiment for e in decoded.events if e is not None}
    found = await targets.get(runtime.experiments, names, settings, now)
    checked = await off_loop(len(decoded.events), lambda: _checked(decoded, found, settings, now))
    errors = decoded.errors + checked.errors
    errors.sort(key=lambda e: int(e["index"]))
    return checked, errors, len(decoded.events)


async def _ingest(
    runtime: Runtime, store: EventStore, targets: Targets, body: bytes, call: Call, atomic: bool
) -> tuple[dict[str, Any], list[str]]:
    """Validate, append, and the answer (with the experiments written to)."""
    checked, errors, count = await _validated(runtime, targets, body)
    refused = len({e["index"] for e in errors})
    if refused and (atomic or refused == count):
        runtime.metrics.reject_events(errors, count)
        if refused == count:
            message = f"none of the {count} events is valid"
        else:
            message = f"{refused} of {count} events are invalid; none was accepted (atomic)"
        raise ValidationFailed(message, errors)
    result = await store.append_many(checked.by_experiment, call)
    if refused:
        runtime.metrics.reject_events(errors, refused)
    answer = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": errors[:MAX_DETAILS],
        "rejected_count": refused,
    }
    return answer, list(checked.by_experiment)


async def ingest(
    runtime: Runtime, caller: str, idempotency_key: str | None, body: bytes, atomic: bool
) -> dict[str, Any]:
    """The 202 answer to a batch from ``caller`` (a key name); raises ValidationFailed (422)
    or Conflict (409: the idempotency key was used with a different body)."""
    store, targets = _ingestion(runtime)
    if idempotency_key is None:
        call = store.call(caller, None, "")
        answer, _ = await _ingest(runtime, store, targets, body, call, atomic)
        return answer
    digest = body_digest(body, "atomic") if atomic else body_digest(body)
    call = store.call(caller, idempotency_key, digest)
    claim = await store.claim(caller, idempotency_key, digest)
    if claim.state == "conflict":
        raise Conflict(
            "this Idempotency-Key was used with a different body",
            [field_error("headers.Idempotency-Key", "reused with a different body")],
        )
    if claim.state == "answered" and claim.answer is not None:
        return claim.answer
    try:
        answer, written = await _ingest(runtime, store, targets, body, call, atomic)
    except ValidationFailed:
        if claim.state == "new":  # nothing was accepted under the key: it stays unused
            await store.release(caller, idempotency_key, digest)
        raise
    await store.settle(caller, idempotency_key, call, answer, written)
    return answer


def _ingestion(runtime: Runtime) -> tuple[EventStore, Targets]:
    store, targets = runtime.events, runtime.event_targets
    if store is None or targets is None:
        raise RuntimeError("not wired: service.components.add_ingestion did not run")
    return store, targets
