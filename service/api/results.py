"""Results, plans and the stats engine on caller-supplied numbers (admin scope)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from service.api._docs import json_body
from service.api.deps import AdminDep, RuntimeDep
from service.bodies import parse_model
from service.errors import ValidationFailed, field_error
from service.results import experiment_plan, experiment_results, spec_plan
from service.spec import ExperimentSpec, check_spec
from service.stats import ArmSummary, Look, StatsInputError, analyze

__all__ = ["router"]

router = APIRouter(tags=["results"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the admin scope"},
    404: {"description": "No such experiment"},
    422: {"description": "Invalid input; `error.details` names each field at fault"},
}


@router.get(
    "/v1/experiments/{key}/results",
    responses={
        **_ERRORS,
        410: {"description": "Ended, and its statistics deleted after the retention period"},
    },
    summary="Per metric, variant and segment: estimates, always-valid CIs, guardrails, "
    "SRM, decision",
)
async def get_results(_: AdminDep, runtime: RuntimeDep, key: str) -> dict[str, Any]:
    return await experiment_results(runtime, key)


@router.get(
    "/v1/experiments/{key}/plan",
    responses=_ERRORS,
    summary="Power analysis: units per variant, total units, expected days, MDE curve",
)
async def get_plan(_: AdminDep, runtime: RuntimeDep, key: str) -> dict[str, Any]:
    return await experiment_plan(runtime, key)


@router.post(
    "/v1/plan",
    responses=_ERRORS,
    summary="Power analysis of a spec that is not stored (before launch)",
)
async def plan_spec(_: AdminDep, spec: ExperimentSpec) -> dict[str, Any]:
    return {"experiment": spec.key, **spec_plan(check_spec(spec))}


MAX_LOOKS = 1000


class ArmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    units: int = Field(ge=0)
    sum: float
    sum_sq: float | None = None
    den_sum: float | None = None
    den_sum_sq: float | None = None
    cross_sum: float | None = None


class LookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    baseline: ArmBody
    treatment: ArmBody


class MetricBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["mean", "proportion", "ratio"]
    direction: Literal["increase", "decrease"] = "increase"


class AnalyzeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: MetricBody
    design: Literal["group_sequential", "fixed", "always_valid"] = "group_sequential"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    planned_units_per_variant: float | None = Field(default=None, gt=0)
    final: bool = Field(
        default=False,
        description="The last look is the horizon, though short of the plan. For fixed and "
        "group_sequential designs the verdict at the horizon (the first look that reaches "
        "planned_units_per_variant, or this one) is final: later looks come back under "
        "past_plan, with an always-valid interval, and are not tested.",
    )
    looks: list[LookBody] = Field(min_length=1, max_length=MAX_LOOKS)


_ANALYZE_EXAMPLES: dict[str, Any] = {
    "mean": {
        "summary": "A mean metric, group sequential, one look so far",
        "value": {
            "metric": {"kind": "mean", "direction": "increase"},
            "design": "group_sequential",
            "alpha": 0.05,
            "planned_units_per_variant": 20000,
            "looks": [
                {
                    "baseline": {"units": 1000, "sum": 98, "sum_sq": 98},
                    "treatment": {"units": 1000, "sum": 105, "sum_sq": 105},
                }
            ],
        },
    },
    "ratio": {
        "summary": "A ratio metric (delta method), fixed horizon",
        "value": {
            "metric": {"kind": "ratio", "direction": "increase"},
            "design": "fixed",
            "looks": [
                {
                    "baseline": {
                        "units": 5000,
                        "sum": 3100,
                        "sum_sq": 4200,
                        "den_sum": 5000,
                        "den_sum_sq": 6500,
                        "cross_sum": 4000,
                    },
                    "treatment": {
                        "units": 5000,
                        "sum": 3300,
                        "sum_sq": 4500,
                        "den_sum": 5000,
                        "den_sum_sq": 6400,
                        "cross_sum": 4300,
                    },
                }
            ],
        },
    },
}


@router.post(
    "/v1/analyze",
    responses=_ERRORS,
    summary="The stats engine on summary statistics you bring (backtests, offline data)",
    description="Send every look so far, oldest first. For fixed and group_sequential "
    "designs the first look at the planned size decides for good (`horizon_reached_at`, "
    "`decided_at`); a later look is shown under `past_plan` and never tested. A fixed "
    "design given several looks needs `planned_units_per_variant`.",
    openapi_extra=json_body(AnalyzeBody, examples=_ANALYZE_EXAMPLES),
)
async def analyze_numbers(_: AdminDep, request: Request) -> dict[str, Any]:
    body = parse_model(await request.body(), AnalyzeBody, looks=MAX_LOOKS)
    looks = [
        Look(
            baseline=ArmSummary(**look.baseline.model_dump()),
            treatment=ArmSummary(**look.treatment.model_dump()),
        )
        for look in body.looks
    ]
    try:
        result = analyze(
            kind=body.metric.kind,
            direction=body.metric.direction,
            design=body.design,
            looks=looks,
            alpha=body.alpha,
            planned_units_per_variant=body.planned_units_per_variant,
            final=body.final,
        )
    except StatsInputError as exc:
        field = exc.field.replace("[", ".").replace("]", "")
        details = [field_error(field, exc.message)]
        raise ValidationFailed("invalid analysis input", details) from None
    return result.to_dict()
