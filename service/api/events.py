"""``POST /v1/events`` (client scope): outcome events, checked one by one, then appended.

A batch's valid events are kept and its invalid ones refused by index, field and reason:
202 ``{accepted, duplicates, rejected: [{index, field, message}], rejected_count}`` (the
first ``MAX_DETAILS`` problems listed, every refused event counted). ``?atomic=true``
keeps the all-or-nothing behaviour: any invalid event refuses the batch with a 422. A batch
with no valid event is a 422 either way. The valid events are appended to their
experiments' streams (one Lua call each) before the 202.

With an ``Idempotency-Key`` the key is claimed before any work: a different body under a
used key is a 409, and a replay gets the first answer, partial refusals included (see
``service/store/events.py`` for how a committed batch whose answer was lost is answered).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from service.api._docs import json_body
from service.api.deps import identity
from service.api.responses import JSON
from service.bodies import TooManyItems, off_loop, prepare
from service.errors import MAX_DETAILS, Conflict, FieldError, ValidationFailed, field_error
from service.ingestion._checks import Checked, Target, Targets, check_events
from service.ingestion._decode import VALUE_LIMIT, Decoded, decode_events
from service.runtime import Runtime
from service.settings import Settings
from service.store import AggregateStore, Call, EventStore, body_digest
from sharpen import MAX_UNIT_ID

__all__ = ["VALUE_LIMIT", "add_ingestion", "router"]

router = APIRouter(prefix="/v1", tags=["events"])

_MAX_IDEMPOTENCY_KEY = 200
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


# --- documentation only (the route decodes with msgspec) ---------------------------------


class EventDoc(BaseModel):
    event_id: str = Field(max_length=128, description="Unique per event; retries reuse it.")
    experiment: str
    unit_id: str | int = Field(description=f"1 to {MAX_UNIT_ID} characters (sharpen.MAX_UNIT_ID).")
    timestamp: str | float = Field(description="ISO-8601 (naive = UTC) or epoch seconds.")
    values: dict[str, float] = Field(description="Raw values; metrics are defined over them.")
    attributes: dict[str, str | float | bool | None] | None = None
    variant: str | None = Field(default=None, description="What assignment returned.")
    covariates: dict[str, float] | None = Field(default=None, description="Pre-period (CUPED).")


class EventsDoc(BaseModel):
    events: list[EventDoc] = Field(min_length=1, max_length=10_000)


class Refused(BaseModel):
    index: int = Field(description="Position of the refused event in the batch.")
    field: str = Field(description="The field at fault, e.g. `events.3.values.latency_ms`.")
    message: str
    code: str | None = Field(default=None, description="`not_found`, `not_running` or absent.")
    status: int | None = Field(default=None, description="404 with `not_found`.")


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events appended now.")
    duplicates: int = Field(description="Events whose event_id was seen before (not recounted).")
    rejected: list[Refused] = Field(
        description=f"Why events were refused, by index (the first {MAX_DETAILS} problems)."
    )
    rejected_count: int = Field(description="Events refused (not resent by the SDK).")


_EXAMPLE = {
    "events": [
        {
            "event_id": "9f1c2d7e-0001",
            "experiment": "fraud-v7",
            "unit_id": "user-42",
            "variant": "candidate",
            "timestamp": "2024-05-01T12:00:00.123Z",
            "values": {"true_positive": 1, "flagged": 1, "latency_ms": 42},
            "attributes": {"country": "US", "device": "mobile"},
        }
    ]
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the client scope"},
    409: {"description": "Idempotency-Key reused with a different body"},
    413: {"description": "Body larger than max_events_body_bytes"},
    422: {
        "description": "Not a batch (not JSON, no events, more than events_max_batch), no "
        "valid event, or with `?atomic=true` any invalid event: `error.details` names each "
        "bad field with the event's `index`, and none of the batch was accepted"
    },
    503: {
        "description": "Storage unavailable or busy, or aggregation backlog full; retry after "
        "Retry-After (the same Idempotency-Key and event ids are safe to resend)"
    },
}


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not value or len(value) > _MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise ValidationFailed(
            "invalid Idempotency-Key header",
            [
                field_error(
                    "headers.Idempotency-Key",
                    f"1 to {_MAX_IDEMPOTENCY_KEY} printable characters",
                )
            ],
        )
    return value


def _atomic(request: Request) -> bool:
    raw = request.query_params.get("atomic")
    if raw is None:
        return False
    flag = _FLAGS.get(raw.lower())
    if flag is None:
        raise ValidationFailed(
            "invalid atomic flag", [field_error("query.atomic", "true or false")]
        )
    return flag


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


# --- the route ---------------------------------------------------------------------------


@router.post(
    "/events",
    status_code=202,
    summary="Record outcome events (batched; the valid ones are kept)",
    response_model=None,
    responses={202: {"model": EventsAccepted}, **_ERRORS},
    openapi_extra={
        **json_body(EventsDoc, _EXAMPLE),
        "parameters": [
            {
                "name": "atomic",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean", "default": False},
                "description": "true: refuse the whole batch (422) if any event is invalid.",
            }
        ],
    },
)
async def post_events(request: Request) -> JSON:
    # Dependencies resolved by hand: FastAPI runs sync dependencies in a thread pool, four
    # thread hops per request that cost more than this route's own bookkeeping.
    who = identity(request, "client")
    runtime: Runtime = request.app.state.runtime
    store, targets = _ingestion(runtime)
    atomic = _atomic(request)
    idempotency_key = _idempotency_key(request)
    body = await request.body()
    if idempotency_key is None:
        call = store.call(who.name, None, "")
        answer, _ = await _ingest(runtime, store, targets, body, call, atomic)
        return JSON(answer, status_code=202)
    digest = body_digest(body, "atomic") if atomic else body_digest(body)
    call = store.call(who.name, idempotency_key, digest)
    claim = await store.claim(who.name, idempotency_key, digest)
    if claim.state == "conflict":
        raise Conflict(
            "this Idempotency-Key was used with a different body",
            [field_error("headers.Idempotency-Key", "reused with a different body")],
        )
    if claim.state == "answered" and claim.answer is not None:
        return JSON(claim.answer, status_code=202)
    try:
        answer, written = await _ingest(runtime, store, targets, body, call, atomic)
    except ValidationFailed:
        if claim.state == "new":  # nothing was accepted under the key: it stays unused
            await store.release(who.name, idempotency_key, digest)
        raise
    await store.settle(who.name, idempotency_key, call, answer, written)
    return JSON(answer, status_code=202)


_EXTRA = "ingest.targets"


def _ingestion(runtime: Runtime) -> tuple[EventStore, Targets]:
    store = runtime.events
    targets = runtime.extras.get(_EXTRA)
    if store is None or not isinstance(targets, Targets):
        raise RuntimeError("ingestion is not wired: add_ingestion is not a component factory")
    return store, targets


def add_ingestion(runtime: Runtime) -> None:
    """Component factory: the stores behind ``/v1/events`` and the statistics read API."""
    settings = runtime.settings
    runtime.events = EventStore(
        runtime.redis,
        dedup_window_s=settings.event_dedup_window_s,
        max_backlog=settings.ingest_max_backlog,
        idempotency_window_s=settings.idempotency_window_s,
    )
    runtime.aggregates = AggregateStore(runtime.redis)
    runtime.extras[_EXTRA] = Targets()
    prepare(settings.events_max_batch, settings.records_max_batch)  # records and labels too
