"""The model monitor's reports (``GET /v1/models/{name}/monitor``) and the weekly review
(``GET /v1/review``)."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Path, Query

from service.api.deps import AdminDep, RecordsDep, RuntimeDep
from service.api.model_lines import analysis_slots, line_impact, model_analysis
from service.api.responses import JSON
from service.errors import NotFound, SharpenServiceError, ValidationFailed, field_error
from service.modelwatch import ReportConfig
from service.modelwatch._review import line_review, pattern, rank_lines
from service.modelwatch._watch import watched_models
from service.runtime import Runtime
from service.spec.models import KEY_PATTERN
from service.store.model_watch import WatchStore
from service.store.records import RecordStore

__all__ = ["gather_review", "parse_since", "router"]

router = APIRouter(prefix="/v1", tags=["models"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the needed scope"},
    404: {"description": "No such model"},
    422: {"description": "Invalid input; `error.details` names the field"},
}
_SINCE = re.compile(r"^(\d{1,4})([hdw])$")
_UNITS = {"h": 3600, "d": 86_400, "w": 7 * 86_400}
_MAX_SINCE_S = 120 * 86_400
REVIEW_ANALYSES = 5
"""Lines of a review (the highest ranked) that get an error analysis."""


def parse_since(text: str, field: str = "since") -> float:
    """``7d``, ``24h``, ``2w`` -> seconds (at most 120 days); 422 naming ``field``."""
    match = _SINCE.match(text.strip())
    seconds = int(match.group(1)) * _UNITS[match.group(2)] if match else 0
    if not 0 < seconds <= _MAX_SINCE_S:
        raise ValidationFailed(
            "bad period",
            [field_error(field, "write it as a number and h, d or w (24h, 7d, 2w), at most 120d")],
        )
    return float(seconds)


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


async def gather_review(
    runtime: Runtime, *, model: str | None, since_s: float, now: float | None = None
) -> dict[str, Any]:
    """The weekly review of one model line or all of them (see ``modelwatch._review``)."""
    now = time.time() if now is None else now
    since = now - since_s
    records = RecordStore(runtime.redis, max_records=runtime.settings.model_max_records)
    if model is not None:
        if not await records.exists(model):
            raise NotFound(f"model {model!r} has no records")
        names = [model]
    else:
        names = await watched_models(records, runtime.settings.model_monitor_max_models)
    watch = WatchStore(runtime.redis)
    experiments = await runtime.experiments.list()
    journal = runtime.journal
    entries = {e.experiment: e for e in await journal.entries()} if journal else {}
    lines = {line.line: line for line in await journal.lines()} if journal else {}
    out = []
    for name in names:
        line = lines.get(name)
        out.append(
            line_review(
                name,
                history=await watch.history(name),
                now=now,
                since=since,
                experiments=experiments,
                entries=entries,
                cumulative=[c.model_dump() for c in line.cumulative] if line else [],
                impact=await line_impact(runtime, name),
            )
        )
    ranked = rank_lines(out)
    # The error analysis reads every record: only the lines ranked first get one.
    for line_doc in ranked:
        name = str(line_doc["model"])
        if line_doc["rank"] > REVIEW_ANALYSES:
            line_doc["pattern"] = {
                "unavailable": f"ranked below {REVIEW_ANALYSES}: see `sharpen analyze {name}`"
            }
            continue
        analysis, error = None, None
        try:
            analysis = await model_analysis(
                records,
                name,
                since=since,
                impact=await line_impact(runtime, name),
                slots=analysis_slots(runtime),
            )
        except SharpenServiceError as exc:
            error = str(exc)
        line_doc["pattern"] = pattern(analysis, error)
    config = ReportConfig(reference_days=runtime.settings.model_monitor_reference_days)
    return {
        "generated_at": now,
        "since": since,
        "period_s": since_s,
        "reference_days": config.reference_days,
        "lines": ranked,
    }


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
