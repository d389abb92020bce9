"""The dashboard's ramp: a confirmation naming what the gate says, then a CSRF-checked form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from service.errors import ValidationFailed, field_error
from service.rollout import ramp, target_step
from service.runtime import Runtime
from service.ui._auth import UISession, UISessionDep, check_csrf, read_form
from service.ui._render import SECURITY_HEADERS, Templates
from service.ui._rollout_view import rollout_context
from service.ui._sources import SourcesDep

__all__ = ["register"]


def _share(form: dict[str, str]) -> float | None:
    raw = form.get("to", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise ValidationFailed(
            "the share to ramp to is not a number in (0, 1]", [field_error("to", repr(raw))]
        )
    return value


def register(router: APIRouter, templates: Templates) -> None:
    """Register before the experiment pages: ``/confirm/ramp`` and ``/ramp`` are matched
    here, not as lifecycle actions."""

    def context(request: Request, session: UISession, **extra: Any) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        return {"session": session, "refresh_s": runtime.settings.ui_refresh_interval_s, **extra}

    @router.get("/experiments/{key}/confirm/ramp", name="ui_confirm_ramp")
    async def confirm_ramp(
        request: Request, session: UISessionDep, sources: SourcesDep, key: str
    ) -> Response:
        runtime: Runtime = request.app.state.runtime
        record = await runtime.experiments.get(key)
        target_step(record, None)  # 409 unless it can be ramped
        results = await sources.results(runtime, key)
        return templates.render(
            request,
            "confirm_ramp.html",
            context(
                request,
                session,
                nav="experiments",
                record=record,
                **rollout_context(record, results),
            ),
        )

    @router.post("/experiments/{key}/ramp", name="ui_ramp")
    async def ramp_action(
        request: Request, session: UISessionDep, sources: SourcesDep, key: str
    ) -> Response:
        form = await read_form(request)
        check_csrf(session, form)
        runtime: Runtime = request.app.state.runtime
        record = await runtime.experiments.get(key)
        to = _share(form)
        target_step(record, to)  # refuse before computing the results
        results = await sources.results(runtime, key) or {}
        reason = form.get("reason", "").strip()[:2000] or None
        await ramp(runtime, record, results, session.name, to=to, reason=reason, via="dashboard")
        return RedirectResponse(
            f"/ui/experiments/{key}?done=ramp", status_code=303, headers=SECURITY_HEADERS
        )
