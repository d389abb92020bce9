"""Experiments: create, list, read, edit drafts, lifecycle actions (admin scope)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import AdminDep, ExperimentsDep, RuntimeDep
from service.errors import ValidationFailed, field_error
from service.monitor import on_lifecycle
from service.results import experiment_results
from service.rollout import ramp, target_step
from service.runtime import Runtime
from service.spec import ExperimentRecord, ExperimentSpec, Status, check_spec
from service.spec.examples import FRAUD_V7
from service.webhook_targets import refused_targets

__all__ = ["router"]

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the admin scope"},
    404: {"description": "No such experiment"},
    409: {"description": "Not allowed in the current status"},
    422: {"description": "Invalid spec; `error.details` names each field at fault"},
}

SpecBody = Body(openapi_examples={"fraud-v7": {"summary": "Fraud v7 vs v6", "value": FRAUD_V7}})


class ExperimentList(BaseModel):
    experiments: list[ExperimentRecord]


class RampBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="The share to ramp to: a later step's `traffic` (default: the next step).",
    )
    reason: str | None = Field(default=None, max_length=2000)


class ActionBody(BaseModel):
    variant: str | None = Field(default=None, description="For ship: the variant to ship.")
    reason: str | None = Field(default=None, max_length=2000)


@router.post(
    "",
    status_code=201,
    response_model=ExperimentRecord,
    responses=_ERRORS,
    summary="Create a draft experiment from a spec",
)
async def create_experiment(
    who: AdminDep, store: ExperimentsDep, runtime: RuntimeDep, spec: ExperimentSpec = SpecBody
) -> ExperimentRecord:
    await _check_webhooks(runtime, spec)
    return await store.create(check_spec(spec), actor=who.name)


@router.get("", response_model=ExperimentList, responses=_ERRORS, summary="List experiments")
async def list_experiments(
    _: AdminDep,
    store: ExperimentsDep,
    status: Status | None = Query(default=None),
    layer: str | None = Query(default=None, max_length=64),
) -> ExperimentList:
    records = await store.list(status=status)
    if layer is not None:
        records = [r for r in records if r.spec.layer == layer]
    return ExperimentList(experiments=records)


@router.get(
    "/{key}",
    response_model=ExperimentRecord,
    responses=_ERRORS,
    summary="One experiment: spec, status, version, audit",
)
async def get_experiment(_: AdminDep, store: ExperimentsDep, key: str) -> ExperimentRecord:
    return await store.get(key)


@router.put(
    "/{key}",
    response_model=ExperimentRecord,
    responses=_ERRORS,
    summary="Edit a draft (a running or ended experiment answers 409)",
)
async def update_experiment(
    who: AdminDep,
    store: ExperimentsDep,
    runtime: RuntimeDep,
    key: str,
    spec: ExperimentSpec = SpecBody,
) -> ExperimentRecord:
    if spec.key != key:
        raise ValidationFailed(
            "the spec's key must match the URL", [field_error("key", f"expected {key!r}")]
        )
    await _check_webhooks(runtime, spec)
    return await store.update_spec(check_spec(spec), actor=who.name)


async def _check_webhooks(runtime: Runtime, spec: ExperimentSpec) -> None:
    """Refuse webhook targets sharpen will not send to (resolved now; again at delivery)."""
    allow = runtime.settings.webhook_allow_private
    errors = await refused_targets(spec.webhooks, field="webhooks", allow_private=allow)
    if errors:
        raise ValidationFailed("webhook targets refused", errors)


def _action_route(action: Literal["start", "stop", "ship", "rollback"]) -> None:
    async def act(
        who: AdminDep,
        store: ExperimentsDep,
        runtime: RuntimeDep,
        key: str,
        body: ActionBody | None = None,
    ) -> ExperimentRecord:
        detail = {"reason": body.reason} if body and body.reason else {}
        record = await store.transition(
            key, action, who.name, variant=body.variant if body else None, detail=detail
        )
        await on_lifecycle(runtime, record, who.name)  # an end: journal entry and webhook
        return record

    router.add_api_route(
        f"/{{key}}/{action}",
        act,
        methods=["POST"],
        response_model=ExperimentRecord,
        responses=_ERRORS,
        summary=f"Lifecycle: {action}",
        name=f"{action}_experiment",
    )


_action_route("start")
_action_route("stop")
_action_route("ship")
_action_route("rollback")


@router.post(
    "/{key}/ramp",
    response_model=ExperimentRecord,
    responses=_ERRORS,
    summary="Rollout: ramp a running experiment's traffic to its next step (or to `to`)",
    description="The one way a running experiment's traffic changes: a new version with an "
    "audit entry (the reason, and what the gate said), picked up by every SDK through the "
    "config. 409 when the experiment is not running, has no rollout or is at its last step.",
)
async def ramp_experiment(
    who: AdminDep,
    store: ExperimentsDep,
    runtime: RuntimeDep,
    key: str,
    body: RampBody | None = None,
) -> ExperimentRecord:
    to = body.to if body else None
    record = await store.get(key)
    target_step(record, to)  # refuse before computing the results
    doc = await experiment_results(runtime, key)
    return await ramp(
        runtime, record, doc, who.name, to=to, reason=body.reason if body else None, via="api"
    )
