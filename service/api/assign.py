"""``POST /v1/assign`` and ``POST /v1/assign/batch`` (client scope).

Assignments are the hot path: the first ASGI step (:mod:`service.api.front`), with the
checks below (:func:`admit_assign`, :func:`read_rest`), answers both endpoints without
FastAPI's per-request machinery (same auth, limits and error shape). The FastAPI routes
below document the endpoints and answer identically when the fast path is not taken
(before the assigner exists).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.types import Receive, Scope

from service.api._docs import json_body
from service.api.deps import AssignerDep, ClientDep
from service.assignment import MAX_BATCH
from service.auth import authorize, caller_of
from service.errors import PayloadTooLarge, field_error
from sharpen import MAX_UNIT_ID

__all__ = [
    "ASSIGN_BATCH_PATH",
    "ASSIGN_PATH",
    "INTERNAL_ERROR",
    "admit_assign",
    "read_rest",
    "router",
    "too_large",
]

ASSIGN_PATH: Final = "/v1/assign"
ASSIGN_BATCH_PATH: Final = "/v1/assign/batch"
_JSON: Final = "application/json"
INTERNAL_ERROR: Final = b'{"error":{"code":"internal","message":"internal error","details":[]}}'

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


def admit_assign(scope: Scope, max_body_bytes: int) -> None:
    """The checks of the assignment endpoints before their body is read: the caller's client
    scope (401 / 403; resolved once by the front step) and the declared length (413)."""
    authorize(caller_of(scope), "client")
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > max_body_bytes:
                raise too_large(max_body_bytes)
            break


async def read_rest(receive: Receive, first: bytes, limit: int) -> bytes | None:
    """The body of a request sent in several messages, after its ``first`` chunk (None:
    the client went away); 413 beyond ``limit`` bytes."""
    chunks = [first]
    size = len(first)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body exceeds {limit} bytes", [field_error("body", f"at most {limit} bytes")]
    )
