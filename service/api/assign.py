"""``POST /v1/assign`` and ``POST /v1/assign/batch`` (client scope).

Single assignments are the hot path: :class:`AssignFastPath`, the ASGI layer right
after :class:`service.auth.Authenticate`, answers them without FastAPI's per-request
machinery (same auth, limits and error shape). The FastAPI route below documents the
endpoint and answers identically when the fast path is not installed.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api._docs import json_body
from service.api.deps import AssignerDep, ClientDep
from service.assignment import MAX_BATCH
from service.auth import authorize, caller_of
from service.errors import PayloadTooLarge, SharpenServiceError, field_error
from sharpen import MAX_UNIT_ID

__all__ = ["ASSIGN_PATH", "AssignFastPath", "router"]

log = logging.getLogger("sharpen.api")

ASSIGN_PATH: Final = "/v1/assign"
_JSON: Final = "application/json"

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


class _Route:
    """What ``scope["route"]`` holds for outer middleware (request metrics read ``.path``),
    as the router would have set it."""

    __slots__ = ()
    path = ASSIGN_PATH
    name = "assign"


class AssignFastPath:
    """Pure ASGI middleware answering ``POST /v1/assign`` directly."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._route = _Route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == ASSIGN_PATH and scope["method"] == "POST":
            runtime = getattr(scope["app"].state, "runtime", None)
            if runtime is not None and runtime.assigner is not None:
                scope["route"] = self._route
                await self._assign(runtime, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _assign(self, runtime: Any, scope: Scope, receive: Receive, send: Send) -> None:
        extra: dict[str, str] = {}
        try:
            authorize(caller_of(scope), "client")  # resolved once, by Authenticate
            declared = _declared_length(scope["headers"])
            limit = self.max_body_bytes
            if declared > limit:
                raise _too_large(limit)
            body = await _read_body(receive, limit)
            if body is None:
                return  # the client went away
            status, content = 200, runtime.assigner.assign(body)
        except SharpenServiceError as exc:
            status, content, extra = exc.status, orjson.dumps(exc.body()), exc.headers
        except Exception:
            log.exception("unhandled error on POST %s", ASSIGN_PATH)
            status = 500
            content = b'{"error":{"code":"internal","message":"internal error","details":[]}}'
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
        ]
        for name, value in extra.items():
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


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
