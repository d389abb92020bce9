"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import RuntimeDep
from service.api.responses import JSON
from service.store.connection import RedisError, ping

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Redis answers",
    responses={503: {"description": "Redis does not answer"}},
    response_model=None,
)
async def readyz(runtime: RuntimeDep) -> JSON | dict[str, str]:
    try:
        await ping(runtime.redis)
    except (RedisError, OSError) as exc:
        body = {
            "error": {"code": "unavailable", "message": f"redis: {exc}", "details": []},
        }
        return JSON(body, status_code=503, headers={"Retry-After": "1"})
    return {"status": "ready"}
