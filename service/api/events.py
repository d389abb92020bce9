"""``POST /v1/events`` (client scope): outcome events, checked one by one, then appended.

A batch's valid events are kept and its invalid ones refused by index, field and reason:
202 ``{accepted, duplicates, rejected: [{index, field, message}], rejected_count}`` (the
first ``MAX_DETAILS`` problems listed, every refused event counted). ``?atomic=true``
keeps the all-or-nothing behaviour: any invalid event refuses the batch with a 422. A batch
with no valid event is a 422 either way. The valid events are appended to their
experiments' streams (one Lua call each) before the 202.

With an ``Idempotency-Key`` the key is claimed before any work: a different body under a
used key is a 409, and a replay gets the first answer, partial refusals included. The work
is :func:`service.ingestion.ingest`; this module reads the request and documents the route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from service.api._docs import json_body
from service.api.deps import identity
from service.api.responses import JSON
from service.errors import MAX_DETAILS, ValidationFailed, field_error
from service.ingestion import ingest
from service.runtime import Runtime
from sharpen import MAX_UNIT_ID

__all__ = ["router"]

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
    atomic = _atomic(request)
    idempotency_key = _idempotency_key(request)
    body = await request.body()
    answer = await ingest(runtime, who.name, idempotency_key, body, atomic)
    return JSON(answer, status_code=202)
