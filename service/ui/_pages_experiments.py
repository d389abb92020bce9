"""Experiments: the list, one experiment's page, its live results fragment, and actions."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from service.errors import Conflict, NotFound, SharpenServiceError
from service.monitor import on_lifecycle
from service.runtime import Runtime
from service.spec import STATUSES, ExperimentRecord, Status
from service.spec.lifecycle import next_status
from service.ui._auth import UISession, UISessionDep, check_csrf, read_form
from service.ui._experiment_view import plan_view, results_view, total_units
from service.ui._render import SECURITY_HEADERS, Templates
from service.ui._rollout_view import rollout_context
from service.ui._sources import Doc, Sources, SourcesDep

__all__ = ["register"]

log = logging.getLogger("sharpen.ui")

StatusFilter = Literal["", Status]
UIAction = Literal["start", "ship", "rollback", "stop"]
_ACTION_LABELS = {"start": "Start", "ship": "Ship", "rollback": "Roll back", "stop": "Stop"}
_DONE = {
    "start": "Experiment started.",
    "ship": "Experiment shipped.",
    "rollback": "Experiment rolled back: everyone gets the baseline.",
    "stop": "Experiment stopped.",
    "ramp": "Rollout ramped up: every SDK picks the new traffic up with its next config.",
}
_CONCURRENCY = 8


async def _fetch(
    sources: Sources, runtime: Runtime, record: ExperimentRecord, what: str
) -> tuple[Doc | None, str | None]:
    """(document, error message); drafts have no results."""
    if what == "results" and record.status == "draft":
        return None, None
    try:
        if what == "results":
            return await sources.results(runtime, record.key), None
        return await sources.plan(runtime, record.key), None
    except SharpenServiceError as exc:
        return None, exc.message
    except Exception:
        log.exception("the %s of %r failed", what, record.key)
        return None, f"the {what} could not be computed (see the server log)"


async def _results_and_plan(
    sources: Sources, runtime: Runtime, record: ExperimentRecord
) -> tuple[Doc | None, Doc | None, str | None, str | None]:
    """Results and plan; the results document carries its own plan (same traffic, same time)."""
    results, results_error = await _fetch(sources, runtime, record, "results")
    embedded = (results or {}).get("plan")
    if isinstance(embedded, dict):
        return results, embedded, results_error, None
    plan, plan_error = await _fetch(sources, runtime, record, "plan")
    return results, plan, results_error, plan_error


def _actions(record: ExperimentRecord) -> list[dict[str, str]]:
    return [
        {"action": a, "label": label}
        for a, label in _ACTION_LABELS.items()
        if next_status(record.status, a) is not None
    ]


def _summary(record: ExperimentRecord, results: Doc | None, plan: Doc | None) -> dict[str, Any]:
    view = results_view(record.spec, results) if results is not None else None
    planned = plan_view(plan, total_units(results))
    return {
        "record": record,
        "units": None if view is None else view["total_units"],
        "planned": None if planned is None else planned["total_units"],
        "progress": None if planned is None else planned["progress"],
        "decision": None if view is None else view["decision"],
        "breached": bool(view and view["breached"]),
        "srm_ok": True if view is None else view["srm_ok"],
    }


def register(router: APIRouter, templates: Templates) -> None:
    def context(request: Request, session: UISession, **extra: Any) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        return {
            "session": session,
            "refresh_s": runtime.settings.ui_refresh_interval_s,
            **extra,
        }

    @router.get("/", name="ui_experiments")
    async def experiments_page(
        request: Request,
        session: UISessionDep,
        sources: SourcesDep,
        status: StatusFilter = Query(default=""),
        layer: str = Query(default="", max_length=64),
    ) -> Response:
        runtime: Runtime = request.app.state.runtime
        records = await runtime.experiments.list()
        layers = sorted({r.spec.layer for r in records if r.spec.layer})
        shown = [
            r
            for r in records
            if (not status or r.status == status) and (not layer or r.spec.layer == layer)
        ]
        shown.sort(key=lambda r: r.created_at, reverse=True)
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def summarise(record: ExperimentRecord) -> dict[str, Any]:
            async with gate:
                results, plan, _, _ = await _results_and_plan(sources, runtime, record)
            return _summary(record, results, plan)

        rows = await asyncio.gather(*(summarise(r) for r in shown))
        return templates.render(
            request,
            "experiments.html",
            context(
                request,
                session,
                nav="experiments",
                rows=rows,
                layers=layers,
                status=status,
                layer=layer,
                statuses=list(STATUSES),
            ),
        )

    async def experiment_context(request: Request, sources: Sources, key: str) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        record = await runtime.experiments.get(key)
        results, plan, results_error, plan_error = await _results_and_plan(sources, runtime, record)
        view = results_view(record.spec, results) if results is not None else None
        return {
            "record": record,
            "spec": record.spec,
            "results": view,
            "results_error": results_error,
            "results_pending": results is None and results_error is None,
            "plan": plan_view(plan, total_units(results)),
            "plan_error": plan_error,
            "actions": _actions(record),
            "live": record.status == "running",
            **rollout_context(record, results),
        }

    @router.get("/experiments/{key}", name="ui_experiment")
    async def experiment_page(
        request: Request,
        session: UISessionDep,
        sources: SourcesDep,
        key: str,
        done: str = Query(default="", max_length=20),
    ) -> Response:
        data = await experiment_context(request, sources, key)
        return templates.render(
            request,
            "experiment.html",
            context(request, session, nav="experiments", flash=_DONE.get(done), **data),
        )

    @router.get("/experiments/{key}/live", name="ui_experiment_live")
    async def experiment_live(
        request: Request, session: UISessionDep, sources: SourcesDep, key: str
    ) -> Response:
        data = await experiment_context(request, sources, key)
        return templates.render(request, "_live.html", context(request, session, **data))

    @router.get("/experiments/{key}/confirm/{action}", name="ui_confirm")
    async def confirm_page(
        request: Request,
        session: UISessionDep,
        sources: SourcesDep,
        key: str,
        action: UIAction,
    ) -> Response:
        data = await experiment_context(request, sources, key)
        record: ExperimentRecord = data["record"]
        if next_status(record.status, action) is None:
            raise Conflict(f"cannot {action} experiment {key!r}: it is {record.status}")
        candidates = [v for v in record.spec.variant_keys() if v != record.spec.baseline]
        return templates.render(
            request,
            "confirm.html",
            context(
                request,
                session,
                nav="experiments",
                action=action,
                label=_ACTION_LABELS[action],
                candidates=candidates,
                **data,
            ),
        )

    @router.post("/experiments/{key}/{action}", name="ui_action")
    async def act(
        request: Request, session: UISessionDep, sources: SourcesDep, key: str, action: UIAction
    ) -> Response:
        form = await read_form(request)
        check_csrf(session, form)
        runtime: Runtime = request.app.state.runtime
        record = await runtime.experiments.get(key)
        detail: dict[str, Any] = {"via": "dashboard"}
        reason = form.get("reason", "").strip()[:2000]
        if reason:
            detail["reason"] = reason
        results, _ = await _fetch(sources, runtime, record, "results")
        decision = (results or {}).get("decision")
        if isinstance(decision, dict):
            detail["decision"] = decision.get("action")
            detail["decision_reasons"] = list(decision.get("reasons") or [])[:20]
        variant = form.get("variant") or None
        if variant is not None and variant not in record.spec.variant_keys():
            raise NotFound(f"experiment {key!r} has no variant {variant!r}")
        changed = await runtime.experiments.transition(
            key,
            action,
            session.name,
            variant=variant if action == "ship" else None,
            detail=detail,
        )
        # The same follow-up as the JSON API: an end writes the journal and fires webhooks.
        await on_lifecycle(runtime, changed, session.name)
        return RedirectResponse(
            f"/ui/experiments/{key}?done={action}", status_code=303, headers=SECURITY_HEADERS
        )
