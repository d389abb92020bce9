"""A model line as the API and the dashboard see it: its stored records, their error
analysis (off the event loop, a bounded number at once), the price of its errors, and the
weekly review gathered from the stores."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import time
from typing import Any

from service.analysis import (
    AnalysisParams,
    Reference,
    build_reference,
    pack_rows,
    reference_meta,
    run_analysis,
    unpack,
)
from service.errors import NotFound, SharpenServiceError, Unavailable, ValidationFailed, field_error
from service.modelwatch._report import ReportConfig
from service.modelwatch._review import line_review, pattern, rank_lines
from service.modelwatch._watch import watched_models
from service.runtime import Runtime
from service.store.model_watch import WatchStore
from service.store.records import AddResult, RecordStore

__all__ = [
    "REVIEW_ANALYSES",
    "add_labels",
    "add_records",
    "analysis_slots",
    "gather_review",
    "line_impact",
    "model_analysis",
    "parse_since",
    "records_of",
    "within",
]


def records_of(runtime: Runtime) -> RecordStore:
    """The app's record store (one per runtime)."""
    store = runtime.extras.get("records")
    if not isinstance(store, RecordStore):
        store = RecordStore(runtime.redis, max_records=runtime.settings.model_max_records)
        runtime.extras["records"] = store
    return store


def within(records: list[dict[str, Any]], start: float | None, end: float | None) -> list[Any]:
    """The records stamped in ``[start, end)`` (no bound where ``None``)."""
    if start is None and end is None:
        return records
    lo = -math.inf if start is None else start
    hi = math.inf if end is None else end
    return [r for r in records if lo <= r["timestamp"] < hi]


async def _room_in_feed(runtime: Runtime, name: str) -> None:
    """Refuse (503) while the model monitor is ``model_monitor_backlog_max`` items behind:
    what is accepted must reach the monitor's statistics, so it is not taken on to drop."""
    behind = await WatchStore(runtime.redis).backlog(name)
    if behind >= runtime.settings.model_monitor_backlog_max:
        raise Unavailable(
            f"the model monitor is {behind:,} records and labels behind on {name!r}; retry shortly",
            retry_after_s=5,
        )


async def add_records(runtime: Runtime, name: str, records: list[dict[str, Any]]) -> AddResult:
    """Store records (the stored shape); once the model holds ``model_reference_records``,
    its first records become its reference unless one was uploaded."""
    await _room_in_feed(runtime, name)
    store = records_of(runtime)
    result = await store.add(name, records)
    # Never more than are kept, or a small store would never freeze its reference.
    first = min(runtime.settings.model_reference_records, runtime.settings.model_max_records)
    if not result.has_reference and result.stored >= first:
        frozen = build_reference(await store.read(name, limit=first), source="first_records")
        meta = {**reference_meta(frozen), "created_at": time.time()}
        await store.set_reference(name, meta, pack_rows(frozen), replace=False)
    return result


async def add_labels(runtime: Runtime, name: str, labels: list[tuple[str, Any]]) -> tuple[int, int]:
    """Attach late labels: ``(matched, unmatched)``."""
    await _room_in_feed(runtime, name)
    return await records_of(runtime).add_labels(name, labels)


def analysis_slots(runtime: Any) -> asyncio.Semaphore:
    """The per-process bound on analyses running at once (``SHARPEN_MODEL_ANALYSIS_SLOTS``)."""
    slots = runtime.extras.get("analysis_slots")
    if not isinstance(slots, asyncio.Semaphore):
        slots = asyncio.Semaphore(runtime.settings.model_analysis_slots)
        runtime.extras["analysis_slots"] = slots
    return slots


async def line_impact(runtime: Any, name: str) -> tuple[float, str] | None:
    """``impact`` (value per unit, currency) of the newest experiment on the model's line."""
    from service.journal import line_of

    best: tuple[float, float, str] | None = None
    for record in await runtime.experiments.list():
        spec = record.spec
        if spec.impact is None or line_of(spec) != name:
            continue
        at = float(record.started_at or 0.0)
        if best is None or at >= best[0]:
            best = (at, spec.impact.value_per_unit, spec.impact.currency)
    return None if best is None else (best[1], best[2])


async def _reference(
    store: RecordStore,
    name: str,
    records: list[dict[str, Any]],
    window: tuple[float | None, float | None] | None,
) -> Reference | None:
    if window is not None:
        rows = within(records, *window)
        if not rows:
            raise ValidationFailed(
                "the reference window holds no records",
                [field_error("reference_start", "no stored record falls in the window")],
            )
        return build_reference(rows, source="window")
    stored = await store.reference(name)
    return None if stored is None else unpack(*stored)


async def model_analysis(
    store: RecordStore,
    name: str,
    params: AnalysisParams | None = None,
    *,
    since: float | None = None,
    until: float | None = None,
    reference_window: tuple[float | None, float | None] | None = None,
    impact: tuple[float, str] | None = None,
    slots: asyncio.Semaphore | None = None,
) -> dict[str, Any]:
    """The analysis report of a stored model (what ``GET .../analysis`` returns).

    Records in ``[since, until)``; the reference of ``reference_window`` when given,
    else the stored one (uploaded, or the frozen first records). The model's settings
    (``tolerance``) apply. The analysis runs in a worker thread, at most ``slots`` at
    once (503 with Retry-After when all are busy); its per-error levers are kept for
    ``GET .../errors``. Raises NotFound for a model without records.
    """
    if not await store.exists(name):
        raise NotFound(f"model {name!r} has no records")
    if slots is not None and slots.locked():
        raise Unavailable("an analysis is already running; retry shortly", retry_after_s=5)
    settings = await store.settings(name)
    base = params or AnalysisParams()
    params = dataclasses.replace(
        base,
        tolerance=settings.get("tolerance"),
        value_per_error=None if impact is None else impact[0],
        currency=None if impact is None else impact[1],
    )
    records = await store.read(name)
    reference = await _reference(store, name, records, reference_window)
    selected = within(records, since, until)
    guard = slots if slots is not None else asyncio.Semaphore(1)
    async with guard:
        try:
            result = await asyncio.to_thread(run_analysis, selected, params, reference)
        except ValueError as exc:
            raise ValidationFailed(str(exc), [field_error("tolerance", str(exc))]) from None
    at = time.time()
    await store.save_errors(name, {"id": f"{at:.6f}", "at": at, "errors": result.errors})
    return {"model": name, "stored": len(records), "analysed_at": at, **result.report}


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


async def gather_review(
    runtime: Runtime, *, model: str | None, since_s: float, now: float | None = None
) -> dict[str, Any]:
    """The weekly review of one model line or all of them (see ``modelwatch._review``)."""
    now = time.time() if now is None else now
    since = now - since_s
    records = records_of(runtime)
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
