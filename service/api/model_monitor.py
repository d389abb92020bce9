"""The model monitor's reports (``GET /v1/models/{name}/monitor``) and the weekly review
(``GET /v1/review``)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query

from service.api.deps import AdminDep, RecordsDep, RuntimeDep
from service.api.responses import JSON
from service.errors import NotFound
from service.modelwatch import gather_review, parse_since
from service.spec.models import KEY_PATTERN
from service.store.model_watch import WatchStore

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["models"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the needed scope"},
    404: {"description": "No such model"},
    422: {"description": "Invalid input; `error.details` names the field"},
}


@router.get(
    "/models/{name}/monitor",
    response_class=JSON,
    responses=_ERRORS,
    summary="The model monitor's latest report: status per segment x metric with evidence, "
    "input drift, label completeness, daily trends",
)
async def get_monitor(
    _: AdminDep,
    runtime: RuntimeDep,
    store: RecordsDep,
    name: str = Path(pattern=KEY_PATTERN, description="Model name, like a key."),
) -> JSON:
    if not await store.exists(name):
        raise NotFound(f"model {name!r} has no records")
    report = await WatchStore(runtime.redis).report(name)
    if report is None:
        interval = runtime.settings.model_monitor_interval_s
        return JSON(
            {
                "model": name,
                "status": "pending",
                "message": "the model monitor has not reported on this model yet; it runs "
                f"every {interval:g} s in the worker",
            }
        )
    return JSON(report)


@router.get(
    "/review",
    response_class=JSON,
    responses=_ERRORS,
    summary="The weekly review: per model line what changed, the error pattern to fix, "
    "experiments, cumulative improvement; lines ranked by value at stake",
)
async def get_review(
    _: AdminDep,
    runtime: RuntimeDep,
    model: str | None = Query(default=None, pattern=KEY_PATTERN, description="One line only."),
    since: str = Query(default="7d", max_length=8, description="Period: 24h, 7d, 2w, ..."),
) -> JSON:
    return JSON(await gather_review(runtime, model=model, since_s=parse_since(since)))
