"""Feed the app's model collector from the stored reports before each scrape."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from service.metrics import MODEL_STATUS_CODES, ModelSnapshot
from service.modelwatch._watch import watched_models
from service.runtime import Runtime
from service.store.connection import RedisError
from service.store.model_watch import WatchStore
from service.store.records import RecordStore

__all__ = ["refresh_model_metrics", "snapshot_of"]

log = logging.getLogger("sharpen.metrics")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def snapshot_of(report: Mapping[str, Any], now: float) -> ModelSnapshot:
    """The Prometheus view of one report or of its ``_report.metrics_view`` (label lag measured
    at ``now``)."""
    statuses = [
        (str(r["metric"]), str(r["segment"]), MODEL_STATUS_CODES[r["status"]])
        for r in report.get("statuses") or []
        if r.get("status") in MODEL_STATUS_CODES
    ]
    values = []
    seen = set()
    for cell in report.get("cells") or []:
        metric, segment = str(cell["metric"]), str(cell["segment"])
        for window, key in ((cell["window"], "value"), ("reference", "reference")):
            x = _finite(cell.get(key))
            if x is not None and (metric, segment, window) not in seen:
                seen.add((metric, segment, window))
                values.append((metric, segment, str(window), x))
    drift = [
        (str(d["feature"]), float(d["psi"]), 1 if d["status"] == "drift" else 0)
        for d in report.get("drift") or []
        if _finite(d.get("psi")) is not None
    ]
    labels = report.get("labels") or {}
    last = _finite(labels.get("last_at"))
    volume = report.get("volume") or {}
    prediction = report.get("prediction_drift") or {}
    return ModelSnapshot(
        model=str(report["model"]),
        analysed_at=float(report["analysed_at"]),
        statuses=statuses,
        values=values,
        drift=drift,
        prediction_drift=_finite(prediction.get("psi")),
        label_lag_s=None if last is None else max(now - last, 0.0),
        completeness={
            w: c
            for w in ("day", "week")
            if (c := _finite((volume.get(w) or {}).get("completeness"))) is not None
        },
        records={w: float((volume.get(w) or {}).get("records") or 0) for w in ("day", "week")},
        backlog=int((report.get("pipeline") or {}).get("backlog") or 0),
    )


async def refresh_model_metrics(runtime: Runtime, now: float | None = None) -> None:
    """The latest report of every watched model (its ``metrics_view``); on a Redis error
    the last view stays."""
    now = time.time() if now is None else now
    try:
        records = RecordStore(runtime.redis, max_records=runtime.settings.model_max_records)
        names = await watched_models(records, runtime.settings.model_monitor_max_models)
        reports = await WatchStore(runtime.redis).metrics(names)
    except (RedisError, OSError) as exc:
        log.warning("metrics: model view not refreshed: %s", exc)
        return
    snapshots = []
    for name, report in reports.items():
        try:
            snapshots.append(snapshot_of(report, now))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("metrics: unreadable report of model %s: %s", name, exc)
    runtime.metrics.models.update(snapshots)
