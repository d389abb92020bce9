"""The journal: every ended experiment, newest first, and each model line's improvement."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from markupsafe import Markup

from service.runtime import Runtime
from service.ui._auth import UISessionDep
from service.ui._render import Templates
from service.ui._sources import SourcesDep
from service.ui.plots import ImprovementStep, ModelLine, improvement_chart

__all__ = ["improvement_lines", "register"]


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _lift(entry: Mapping[str, Any]) -> tuple[str, float | None] | None:
    primary = entry.get("primary")
    if not isinstance(primary, Mapping):
        return None
    relative = primary.get("relative")
    estimate = relative.get("estimate") if isinstance(relative, Mapping) else None
    return str(primary.get("metric") or ""), _float(estimate)


def improvement_lines(entries: Sequence[Mapping[str, Any]]) -> list[ModelLine]:
    """Per model line and primary metric: baseline, then every ship, compounding the lifts.

    The cumulative value after k ships is the product of (1 + relative lift) minus 1,
    the same definition as the journal's line summaries.
    """
    shipped = [e for e in entries if e.get("status") == "shipped" and _lift(e) is not None]
    shipped.sort(key=lambda e: _float(e.get("ended_at")) or 0.0)
    steps: dict[tuple[str, str], list[ImprovementStep]] = {}
    for entry in shipped:
        found = _lift(entry)
        if found is None:
            continue
        metric, lift = found
        if lift is None:
            continue
        line = str(entry.get("line") or entry.get("experiment"))
        chain = steps.setdefault((line, metric), [])
        previous = chain[-1].cumulative if chain else 0.0
        chain.append(
            ImprovementStep(
                experiment=str(entry.get("experiment")),
                lift=lift,
                cumulative=(1.0 + previous) * (1.0 + lift) - 1.0,
            )
        )
    return [
        ModelLine(name=line, metric=metric, steps=tuple(chain))
        for (line, metric), chain in sorted(steps.items())
    ]


def register(router: APIRouter, templates: Templates) -> None:
    @router.get("/journal", name="ui_journal")
    async def journal_page(
        request: Request, session: UISessionDep, sources: SourcesDep
    ) -> Response:
        runtime: Runtime = request.app.state.runtime
        doc = await sources.journal(runtime)
        entries = [e for e in (doc or {}).get("entries") or [] if isinstance(e, Mapping)]
        entries.sort(key=lambda e: _float(e.get("ended_at")) or 0.0, reverse=True)
        lines = improvement_lines(entries)
        summaries = [s for s in (doc or {}).get("lines") or [] if isinstance(s, Mapping)]
        backtests = [b for b in (doc or {}).get("backtests") or [] if isinstance(b, Mapping)]
        return templates.render(
            request,
            "journal.html",
            {
                "session": session,
                "nav": "journal",
                "pending": doc is None,
                "entries": entries,
                "summaries": summaries,
                "backtests": backtests,
                "chart": Markup(improvement_chart(lines)) if lines else None,
            },
        )
