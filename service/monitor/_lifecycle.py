"""What happens when an experiment ends, whoever ends it: journal entry, webhook, metrics;
the results function the monitor and this module compute documents with."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from service.journal import JournalEntry
from service.rollout import announce_step
from service.runtime import Runtime
from service.spec import ENDED, ExperimentRecord
from service.store.monitor_state import MonitorState

__all__ = ["ResultsFn", "experiment_results", "on_lifecycle"]

log = logging.getLogger("sharpen.monitor")


ResultsFn = Callable[[Runtime, str], Awaitable[Mapping[str, Any]]]
"""``async (runtime, key) -> results document``; injectable for tests and backtests."""


async def experiment_results(runtime: Runtime, key: str) -> Mapping[str, Any]:
    """``service.results.experiment_results``, looked up when first needed."""
    module = importlib.import_module("service.results")
    compute: ResultsFn = module.experiment_results
    return await compute(runtime, key)


_EVENTS = {"shipped": "experiment.shipped", "rolled_back": "experiment.rolled_back"}


def _webhook_data(record: ExperimentRecord, entry: JournalEntry | None) -> dict[str, Any]:
    ending = record.audit[-1] if record.audit else None
    data: dict[str, Any] = {
        "status": record.status,
        "version": record.version,
        "actor": ending.actor if ending else None,
        "detail": dict(ending.detail) if ending else {},
        "variant": record.shipped_variant,
    }
    if entry is not None:
        data["line"] = entry.line
        data["reasons"] = entry.decision.reasons
        data["primary"] = entry.primary.model_dump() if entry.primary else None
        data["value"] = entry.value.model_dump() if entry.value else None
    return data


async def on_lifecycle(
    runtime: Runtime,
    record: ExperimentRecord,
    actor: str,
    *,
    results: Mapping[str, Any] | None = None,
    compute: ResultsFn = experiment_results,
) -> JournalEntry | None:
    """Call after ``ExperimentStore.transition``: for an end status, journal the experiment
    (with its final results), send the ship/rollback webhook, and let its metric series
    linger ``metrics_ended_retention_s``; for a start with a rollout, announce its first
    step. Never raises: the transition already happened,
    and the monitor writes any journal entry missed here on its next pass."""
    if record.status == "running" and record.audit and record.audit[-1].action == "start":
        announce_step(runtime, record, {})  # a rollout's first step begins
    if record.status not in ENDED:
        return None
    error: str | None = None
    if results is None:
        try:
            results = await compute(runtime, record.key)
        except Exception as exc:
            log.warning("results of %s unavailable for the journal: %s", record.key, exc)
            error = f"{type(exc).__name__}: {exc}"
    entry: JournalEntry | None = None
    try:
        if runtime.journal is not None:
            entry = await runtime.journal.record(record, results, actor, results_error=error)
            if entry is not None:
                runtime.metrics.journal_entries.labels(record.status).inc()
                event = _EVENTS.get(record.status)
                if event is not None and runtime.webhooks is not None:
                    runtime.webhooks.send(
                        event, record.key, _webhook_data(record, entry), record.spec.webhooks
                    )
        await MonitorState(runtime.redis).expire_snapshot(
            record.key, runtime.settings.metrics_ended_retention_s
        )
    except Exception:
        log.exception("after %s of %s: journal or webhook failed", record.status, record.key)
    return entry
