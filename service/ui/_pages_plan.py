"""The planning page: sample size and duration for ad-hoc inputs, and the MDE curve."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.errors import ValidationFailed
from service.runtime import Runtime
from service.ui._auth import UISessionDep
from service.ui._experiment_view import plan_view
from service.ui._render import Templates
from service.ui._sources import SourcesDep

__all__ = ["PlanForm", "register"]


class PlanForm(BaseModel):
    """The planning inputs, named like the spec's fields (``mde`` is relative)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["proportion", "mean"] = "proportion"
    baseline_mean: float = Field(default=0.1, description="Baseline rate or mean.")
    baseline_sd: float | None = Field(default=None, gt=0)
    mde: float = Field(default=0.05, gt=0, le=10)
    expected_daily_units: float = Field(default=10_000, gt=0)
    variants: int = Field(default=2, ge=2, le=20)
    alpha: float = Field(default=0.05, gt=0, le=0.5)
    power: float = Field(default=0.8, ge=0.5, lt=1)
    design: Literal["group_sequential", "fixed", "always_valid"] = "group_sequential"
    looks: int = Field(default=14, ge=1, le=200)
    min_days: int = Field(default=14, ge=0, le=365)

    @model_validator(mode="after")
    def _consistent(self) -> PlanForm:
        if self.kind == "proportion" and not 0 < self.baseline_mean < 1:
            raise ValueError("baseline_mean: a baseline rate must lie strictly between 0 and 1")
        if self.kind == "mean" and self.baseline_sd is None:
            raise ValueError("baseline_sd: a mean metric needs the baseline standard deviation")
        if self.baseline_mean == 0:
            raise ValueError("baseline_mean: must not be 0 (the MDE is relative to it)")
        return self


def _errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        message = str(err.get("msg", "invalid"))
        field = loc[0] if loc else ""
        if not field and ":" in message:
            # Model-level checks name their field first: "Value error, baseline_sd: ...".
            head, _, rest = message.partition(":")
            field, message = head.split()[-1], rest.strip()
        out[field or "form"] = message
    return out


def register(router: APIRouter, templates: Templates) -> None:
    @router.get("/plan", name="ui_plan")
    async def plan_page(request: Request, session: UISessionDep, sources: SourcesDep) -> Response:
        runtime: Runtime = request.app.state.runtime
        raw = {k: v for k, v in request.query_params.items() if v != ""}
        submitted = bool(raw)
        values: dict[str, Any] = {**PlanForm().model_dump(), **raw}
        errors: dict[str, str] = {}
        plan: dict[str, Any] | None = None
        pending = False
        if submitted:
            try:
                form = PlanForm.model_validate(raw)
            except ValidationError as exc:
                errors = _errors(exc)
            else:
                values = {
                    k: int(v) if isinstance(v, float) and v.is_integer() and k != "mde" else v
                    for k, v in form.model_dump().items()
                }
                try:
                    doc = await sources.plan_adhoc(runtime, form.model_dump())
                except ValidationError as exc:
                    errors = _errors(exc)
                except ValidationFailed as exc:
                    errors = {str(d.get("field")): str(d.get("message")) for d in exc.details}
                    errors = errors or {"form": exc.message}
                else:
                    pending = doc is None
                    plan = None if doc is None else plan_view(doc, None)
        return templates.render(
            request,
            "plan.html",
            {
                "session": session,
                "nav": "plan",
                "values": values,
                "errors": errors,
                "plan": plan,
                "pending": pending,
                "submitted": submitted,
            },
            status_code=422 if errors else 200,
        )
