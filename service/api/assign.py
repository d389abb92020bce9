"""``POST /v1/assign`` and ``POST /v1/assign/batch`` (client scope).

Assignments are the hot path: :func:`answer_assign`, called by the first ASGI step
(:mod:`service.api.front`), answers both endpoints without FastAPI's per-request machinery
(same auth, limits and error shape). The FastAPI routes below document the endpoints and
answer identically when the fast path is not taken (before the assigner exists).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.types import Receive, Scope

from service.api._docs import json_body
from service.api.deps import AssignerDep, ClientDep
from service.assignment import MAX_BATCH, Assigner
from service.auth import authorize, caller_of
from service.errors import PayloadTooLarge, SharpenServiceError, field_error
from sharpen import MAX_UNIT_ID

__all__ = ["ASSIGN_BATCH_PATH", "ASSIGN_PATH", "answer_assign", "router"]

log = logging.getLogger("sharpen.api")

ASSIGN_PATH: Final = "/v1/assign"
ASSIGN_BATCH_PATH: Final = "/v1/assign/batch"
_JSON: Final = "application/json"
_NO_HEADERS: Final[dict[str, str]] = {}
_INTERNAL: Final = b'{"error":{"code":"internal","message":"internal error","details":[]}}'

router = APIRouter(prefix="/v1", tags=["assignment"])

Scalar = str | int | float | bool | None


class AssignRequestDoc(BaseModel):
    experiment: str = Field(description="Experiment key.", examples=["fraud-v7"])
    unit_id: str | int = Field(
        description=f"Randomization unit (1-{MAX_UNIT_ID} characters, sharpen.MAX_UNIT_ID)."
    )
    attributes: dict[str, Scalar] | None = Field(
        default=None, description="Scalar attributes for targeting and segments (at most 64)."
    )


class AssignmentDoc(BaseModel):
    experiment: str
    variant: str | None
    payload: dict[str, Any]
    in_experiment: bool = Field(description="True only when the unit counts in the analysis.")
    reason: str = Field(
        description="The deciding rule: assigned, shipped, rolled_back, stopped, not_running, "
        "targeting, layer, holdout, traffic."
    )


class BatchUnitDoc(BaseModel):
    unit_id: str | int
    attributes: dict[str, Scalar] | None = None


class BatchRequestDoc(BaseModel):
    experiment: str
    units: list[BatchUnitDoc] = Field(max_length=MAX_BATCH)


class BatchResponseDoc(BaseModel):
    assignments: list[AssignmentDoc] = Field(description="In the order of the request's units.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the client scope"},
    404: {"description": "No such experiment"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid body; `error.details` names the field"},
    503: {"description": "Config not loaded yet"},
}

_EXAMPLE = {"experiment": "fraud-v7", "unit_id": "user-42", "attributes": {"country": "US"}}


@router.post(
    "/assign",
    summary="Assign one unit to a variant",
    response_model=None,
    responses={200: {"model": AssignmentDoc}, **_ERRORS},
    openapi_extra=json_body(AssignRequestDoc, _EXAMPLE),
)
async def assign(request: Request, _: ClientDep, assigner: AssignerDep) -> Response:
    return Response(assigner.assign(await request.body()), media_type=_JSON)


@router.post(
    "/assign/batch",
    summary=f"Assign up to {MAX_BATCH} units of one experiment",
    response_model=None,
    responses={200: {"model": BatchResponseDoc}, **_ERRORS},
    openapi_extra=json_body(
        BatchRequestDoc,
        {"experiment": "fraud-v7", "units": [{"unit_id": "user-1"}, {"unit_id": "user-2"}]},
    ),
)
async def assign_batch(request: Request, _: ClientDep, assigner: AssignerDep) -> Response:
    return Response(assigner.assign_batch(await request.body()), media_type=_JSON)


async def answer_assign(
    assigner: Assigner, scope: Scope, receive: Receive, max_body_bytes: int, *, batch: bool
) -> tuple[int, bytes, dict[str, str]] | None:
    """``POST /v1/assign`` (or ``/v1/assign/batch``) without FastAPI: ``(status, body,
    extra headers)``, or None when the client went away. Same auth, limits and error shape
    as the routes above."""
    try:
        authorize(caller_of(scope), "client")  # resolved once, by the front step
        if _declared_length(scope["headers"]) > max_body_bytes:
            raise _too_large(max_body_bytes)
        body = await _read_body(receive, max_body_bytes)
        if body is None:
            return None
        return 200, (assigner.assign_batch(body) if batch else assigner.assign(body)), _NO_HEADERS
    except SharpenServiceError as exc:
        return exc.status, orjson.dumps(exc.body()), exc.headers
    except Exception:
        log.exception("unhandled error on POST %s", scope["path"])
        return 500, _INTERNAL, _NO_HEADERS


def _declared_length(raw: list[tuple[bytes, bytes]]) -> int:
    for name, value in raw:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    message = await receive()
    if message["type"] != "http.request":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body exceeds {limit} bytes", [field_error("body", f"at most {limit} bytes")]
    )
