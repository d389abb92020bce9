"""Monitored models and their error analysis: breakdowns, calibration, Pareto, levers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Path, Request, Response
from markupsafe import Markup

from service.runtime import Runtime
from service.spec.models import KEY_PATTERN
from service.ui._auth import UISessionDep
from service.ui._experiment_view import segment_label
from service.ui._pages_monitor import with_monitor
from service.ui._render import Templates
from service.ui._sources import SourcesDep
from service.ui.plots import ParetoRegion, ReliabilityBin, pareto_curve, reliability_diagram

__all__ = ["analysis_view", "register"]


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _pair(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return _float(value[0]), _float(value[1])
    return None, None


def _bins(calibration: Any) -> list[ReliabilityBin]:
    rows = calibration.get("bins") if isinstance(calibration, Mapping) else None
    out = []
    for b in rows or []:
        if not isinstance(b, Mapping):
            continue
        accuracy = b.get("observed") if isinstance(b.get("observed"), Mapping) else {}
        lower, upper = _pair((accuracy or {}).get("ci"))
        out.append(
            ReliabilityBin(
                lower=_float(b.get("lower")) or 0.0,
                upper=_float(b.get("upper")) or 0.0,
                records=int(b.get("records") or 0),
                confidence=_float(b.get("mean_predicted")),
                accuracy=_float((accuracy or {}).get("value")),
                accuracy_lower=lower,
                accuracy_upper=upper,
                status=str(b.get("status") or ""),
            )
        )
    return out


def _axes(calibration: Mapping[str, Any]) -> dict[str, str]:
    if calibration.get("of") == "probability":
        return {"x_label": "predicted probability", "y_label": "observed share of positives"}
    return {"x_label": "mean confidence", "y_label": "accuracy"}


def _regions(pareto: Any) -> list[ParetoRegion]:
    out = []
    for p in pareto or []:
        if not isinstance(p, Mapping):
            continue
        out.append(
            ParetoRegion(
                label=segment_label(p.get("attributes"))
                if p.get("attributes")
                else "everything else",
                records=int(p.get("records") or 0),
                errors=int(p.get("errors") or 0),
                error_rate=_float(p.get("error_rate")),
                record_share=_float(p.get("record_share")) or 0.0,
                error_share=_float(p.get("error_share")) or 0.0,
                cumulative_record_share=_float(p.get("cumulative_record_share")) or 0.0,
                cumulative_error_share=_float(p.get("cumulative_error_share")) or 0.0,
            )
        )
    return out


def _worst(segments: Any, rows: int = 5) -> list[Mapping[str, Any]]:
    """The single-attribute segments with the highest error rate and enough labels."""
    single = [
        s
        for s in segments or []
        if isinstance(s, Mapping)
        and len(s.get("attributes") or {}) == 1
        and not s.get("low_support")
    ]

    def rate(s: Mapping[str, Any]) -> float:
        return _float((s.get("error_rate") or {}).get("value")) or 0.0

    return sorted(single, key=lambda s: -rate(s))[:rows]


def analysis_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The analysis report with its two plots drawn; tables read the report as it is."""
    calibration: Mapping[str, Any] = (
        doc.get("calibration") if isinstance(doc.get("calibration"), Mapping) else {}
    ) or {}
    levers = [lv for lv in doc.get("levers") or [] if isinstance(lv, Mapping)]
    levers.sort(key=lambda lv: int(lv.get("rank") or 0))
    time_rows = [r for r in doc.get("time") or [] if isinstance(r, Mapping)]
    return {
        "model": doc.get("model"),
        "stored": doc.get("stored"),
        "overall": doc.get("overall") if isinstance(doc.get("overall"), Mapping) else {},
        "segments": [r for r in doc.get("segments") or [] if isinstance(r, Mapping)],
        "time": {
            dim: [r for r in time_rows if r.get("dimension") == dim]
            for dim in ("hour", "weekday", "day")
        },
        "categories": [r for r in doc.get("categories") or [] if isinstance(r, Mapping)],
        "flags": [r for r in doc.get("flags") or [] if isinstance(r, Mapping)],
        "slices": [r for r in doc.get("slices") or [] if isinstance(r, Mapping)],
        "slice_search": doc.get("slice_search") or {},
        "calibration": calibration or {},
        "levers": levers,
        "has_value": any(lv.get("value") for lv in levers),
        "cover": doc.get("cover") if isinstance(doc.get("cover"), Mapping) else {},
        "worst": _worst(doc.get("segments")),
        "reference": doc.get("reference") if isinstance(doc.get("reference"), Mapping) else {},
        "recommendation": doc.get("recommendation") or None,
        "reliability_svg": Markup(reliability_diagram(_bins(calibration), **_axes(calibration))),
        "pareto_svg": Markup(pareto_curve(_regions(doc.get("pareto")))),
    }


def register(router: APIRouter, templates: Templates) -> None:
    @router.get("/models", name="ui_models")
    async def models_page(request: Request, session: UISessionDep, sources: SourcesDep) -> Response:
        runtime: Runtime = request.app.state.runtime
        models = await sources.models(runtime)
        if models:  # by what most needs attention (the model monitor's reports)
            models = await with_monitor(runtime, models)
        return templates.render(
            request,
            "models.html",
            {"session": session, "nav": "models", "models": models, "pending": models is None},
        )

    @router.get("/models/{name}/analysis", name="ui_model_analysis")
    async def analysis_page(
        request: Request,
        session: UISessionDep,
        sources: SourcesDep,
        name: str = Path(pattern=KEY_PATTERN),
    ) -> Response:
        runtime: Runtime = request.app.state.runtime
        doc = await sources.analysis(runtime, name)
        return templates.render(
            request,
            "analysis.html",
            {
                "session": session,
                "nav": "models",
                "name": name,
                "pending": doc is None,
                "a": analysis_view(doc) if doc is not None else None,
            },
        )
