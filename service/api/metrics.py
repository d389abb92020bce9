"""``GET /metrics``: the Prometheus exposition (no auth, like every exporter)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.api.deps import RuntimeDep
from service.modelwatch import refresh_model_metrics
from service.monitor import refresh_experiment_metrics

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus exposition: service and experiment metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    await refresh_experiment_metrics(runtime)
    await refresh_model_metrics(runtime)
    body, content_type = runtime.metrics.render()
    return Response(body, media_type=content_type)
