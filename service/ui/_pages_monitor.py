"""The deployed models as the model monitor sees them: the list by what needs attention,
one model's statuses, evidence, drift and trends, and the weekly review."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response
from markupsafe import Markup

from service import format as fmt
from service.errors import ValidationFailed
from service.modelwatch import gather_review, line_impact, parse_since, review_markdown
from service.runtime import Runtime
from service.spec.models import KEY_PATTERN
from service.store.model_watch import WatchStore
from service.ui._auth import UISessionDep
from service.ui._render import Templates
from service.ui.plots import TrendDay, trend_plot

__all__ = ["attention", "monitor_view", "register", "with_monitor"]

_RANK = {"degraded": 4, "warning": 3}
STALE_LABELS_S = 6 * 3600


def attention(model: Mapping[str, Any]) -> tuple[float, ...]:
    """Sort key, most urgent first: degraded, warning, input drift, stale labels, then
    the most value (or errors) at stake."""
    report = model.get("monitor") or {}
    status = str(report.get("status") or "")
    drift = any(d.get("status") == "drift" for d in report.get("drift") or [])
    last = fmt.as_float((report.get("labels") or {}).get("last_at"))
    stale = last is not None and time.time() - last > STALE_LABELS_S
    stake = fmt.as_float((model.get("value_at_stake") or {}).get("estimate"))
    errors = fmt.as_float(model.get("errors_per_week"))
    return (
        -_RANK.get(status, 0),
        -float(drift),
        -float(stale),
        -(stake if stake is not None else -1.0),
        -(errors or 0.0),
    )


async def with_monitor(runtime: Runtime, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The models list with each model's latest report (its Prometheus view: statuses,
    drift, volume, summary) and value at stake, by attention."""
    reports = await WatchStore(runtime.redis).metrics([str(m["name"]) for m in models])
    out = []
    for model in models:
        report = reports.get(str(model["name"]))
        row = {**model, "monitor": report, "errors_per_week": None, "value_at_stake": None}
        summary = (report or {}).get("summary") or {}
        rate, volume = (
            fmt.as_float(summary.get("error_rate_week")),
            fmt.as_float(summary.get("records_week")),
        )
        if rate is not None and volume is not None:
            row["errors_per_week"] = rate * volume
            impact = await line_impact(runtime, str(model["name"]))
            if impact is not None:
                row["value_at_stake"] = {
                    "estimate": rate * volume * impact[0],
                    "currency": impact[1],
                }
        row["flagged"] = [s for s in (report or {}).get("statuses") or [] if s["status"] in _RANK]
        row["drifting"] = [
            d["feature"] for d in (report or {}).get("drift") or [] if d["status"] == "drift"
        ]
        out.append(row)
    out.sort(key=lambda m: (*attention(m), str(m["name"])))
    return out


def _trends(report: Mapping[str, Any], metric: str) -> list[Markup]:
    trend = report.get("trend") or {}
    days = [float(d) for d in trend.get("days") or []]
    status = {(s["segment"], s["metric"]): s["status"] for s in report.get("statuses") or []}
    plots = []
    for series in trend.get("series") or []:
        if series["metric"] != metric:
            continue
        points = [
            TrendDay(day, fmt.as_float(v), int(n or 0))
            for day, v, n in zip(days, series["values"], series["labelled"], strict=True)
        ]
        band = series.get("band")
        plots.append(
            Markup(
                trend_plot(
                    points,
                    segment=series["segment"],
                    metric=metric,
                    reference=fmt.as_float(series.get("reference")),
                    band=(float(band[0]), float(band[1])) if band else None,
                    status=status.get((series["segment"], metric), "reported"),
                )
            )
        )
    return plots


def monitor_view(report: Mapping[str, Any], metric: str | None) -> dict[str, Any]:
    """What the model page shows: the grid of statuses, the evidence of what is not ok,
    the drift rows, and one trend plot per segment for ``metric``."""
    metrics: Sequence[str] = report.get("metrics") or []
    decided = [m for m in metrics if m != "ece"]
    chosen = metric if metric in metrics else (decided[0] if decided else None)
    grid: dict[str, dict[str, str]] = {}
    for s in report.get("statuses") or []:
        grid.setdefault(s["segment"], {})[s["metric"]] = s["status"]
    evidence = [c for c in report.get("cells") or [] if c["status"] in ("warning", "degraded")]
    return {
        "report": report,
        "decided": decided,
        "metrics": metrics,
        "metric": chosen,
        "grid": grid,
        "segments": report.get("segments") or [],
        "evidence": evidence,
        "drift": report.get("drift") or [],
        "prediction_drift": report.get("prediction_drift"),
        "plots": _trends(report, chosen) if chosen else [],
    }


def register(router: APIRouter, templates: Templates) -> None:
    @router.get("/models/{name}/monitor", name="ui_model_monitor")
    async def monitor_page(
        request: Request,
        session: UISessionDep,
        name: str = Path(pattern=KEY_PATTERN),
        metric: str | None = Query(default=None, max_length=32),
    ) -> Response:
        runtime: Runtime = request.app.state.runtime
        report = await WatchStore(runtime.redis).report(name)
        return templates.render(
            request,
            "monitor.html",
            {
                "session": session,
                "nav": "models",
                "name": name,
                "interval": runtime.settings.model_monitor_interval_s,
                "v": monitor_view(report, metric) if report is not None else None,
            },
        )

    @router.get("/review", name="ui_review")
    async def review_page(
        request: Request,
        session: UISessionDep,
        since: str = Query(default="7d", max_length=8),
        model: str | None = Query(default=None, pattern=KEY_PATTERN),
    ) -> Response:
        runtime: Runtime = request.app.state.runtime
        try:
            seconds = parse_since(since)
        except ValidationFailed:
            seconds, since = 7 * 86_400.0, "7d"
        review = await gather_review(runtime, model=model, since_s=seconds)
        return templates.render(
            request,
            "review.html",
            {
                "session": session,
                "nav": "review",
                "since": since,
                "review": review,
                "markdown": review_markdown(review),
            },
        )
