"""``GET /metrics``: the Prometheus exposition (no auth, like every exporter)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from starlette.responses import Response

from service.api.deps import RuntimeDep
from service.modelwatch import refresh_model_metrics
from service.monitor import refresh_experiment_metrics
from service.runtime import Runtime
from service.store.connection import RedisError
from service.store.memory import redis_memory

__all__ = ["router"]

router = APIRouter(tags=["metrics"])

log = logging.getLogger("sharpen.metrics")


async def _redis_memory(runtime: Runtime) -> None:
    """Read INFO memory now; on a Redis error the last values stay (and the scrape works)."""
    try:
        memory = await redis_memory(runtime.redis)
    except (RedisError, OSError) as exc:
        log.debug("metrics: redis memory not read: %s", exc)
        return
    metrics = runtime.metrics
    metrics.redis_memory_used.set(memory.used)
    metrics.redis_memory_peak.set(memory.peak)
    metrics.redis_memory_limit.set(memory.limit)


@router.get(
    "/metrics",
    summary="Prometheus exposition: service and experiment metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    await refresh_experiment_metrics(runtime)
    await _redis_memory(runtime)
    await refresh_model_metrics(runtime)
    body, content_type = runtime.metrics.render()
    return Response(body, media_type=content_type)
