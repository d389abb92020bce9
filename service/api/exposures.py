"""``POST /v1/exposures`` (client scope): exposures the SDK's local mode evaluated itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from service.api._docs import json_body
from service.api.deps import AssignerDep, ClientDep
from service.api.responses import JSON
from service.assignment import MAX_EXPOSURES

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["assignment"])

Scalar = str | int | float | bool | None


class ExposureDoc(BaseModel):
    experiment: str
    unit_id: str | int
    variant: str
    version: int = Field(ge=1, description="The experiment version the SDK evaluated.")
    timestamp: str | float = Field(description="ISO-8601 (naive = UTC) or epoch seconds.")
    attributes: dict[str, Scalar] | None = None


class ExposuresDoc(BaseModel):
    exposures: list[ExposureDoc] = Field(max_length=MAX_EXPOSURES)


class Accepted(BaseModel):
    accepted: int


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the client scope"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid exposure; `error.details` names each field (none is stored)"},
    503: {"description": "Storage unavailable; retry (duplicates are harmless)"},
}


@router.post(
    "/exposures",
    status_code=202,
    summary="Record exposures evaluated by the SDK (local mode)",
    response_model=None,
    responses={202: {"model": Accepted}, **_ERRORS},
    openapi_extra=json_body(
        ExposuresDoc,
        {
            "exposures": [
                {
                    "experiment": "fraud-v7",
                    "unit_id": "user-42",
                    "variant": "candidate",
                    "version": 1,
                    "timestamp": "2024-05-01T12:00:00.123Z",
                }
            ]
        },
    ),
)
async def record_exposures(request: Request, _: ClientDep, assigner: AssignerDep) -> JSON:
    accepted = await assigner.record_exposures(await request.body())
    return JSON({"accepted": accepted}, status_code=202)
