"""The model monitor: every ``model_monitor_interval_s``, for each model it leads, apply
the feed to the buckets, build the report, keep it, and alert on what changed.

It runs beside the guardrail monitor (``add_monitoring``) and uses the same lease
(``MonitorState``, purpose ``monitor``, key ``model:NAME``), so one process at a time
watches a model; the bucket script's cursor check and the notices' fingerprints make
sure nothing is applied or sent twice even if a lease ever lapsed mid-pass.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.analysis._frame import normalise
from service.analysis._reference import unpack
from service.modelwatch._alerts import transitions
from service.modelwatch._apply import Limits, drain
from service.modelwatch._contrib import Scoring, bin_counts
from service.modelwatch._report import Facts, ReportConfig, build_report, metrics_view
from service.modelwatch._windows import Windows, parse_bucket
from service.runtime import Periodic, Runtime
from service.store.model_watch import WatchStore
from service.store.monitor_state import MonitorState
from service.store.records import RecordStore

__all__ = ["LEASE_PURPOSE", "ModelWatch", "WatchPass", "lease_key", "watched_models"]

log = logging.getLogger("sharpen.modelwatch")

LEASE_PURPOSE = "monitor"
NOTICE_TTL_S = 90 * 86_400
HISTORY_DAYS = 120


def lease_key(name: str) -> str:
    """The lease key of a model (cannot collide with an experiment key: those have no ':')."""
    return f"model:{name}"


@dataclass
class WatchPass:
    """What one pass did (for logs and tests)."""

    analysed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


def report_config(settings: Any) -> ReportConfig:
    return ReportConfig(
        alpha=settings.model_monitor_alpha,
        margin=settings.model_monitor_margin,
        min_labelled=settings.model_monitor_min_labelled,
        min_records=settings.model_monitor_min_labelled,
        psi_threshold=settings.model_monitor_psi,
        max_values=settings.metrics_segment_values_max,
        reference_days=settings.model_monitor_reference_days,
    )


def limits(settings: Any) -> Limits:
    return Limits(
        attributes=settings.model_monitor_attributes,
        features=settings.model_monitor_features,
        values=settings.model_monitor_values,
        hours_kept=49,
        days_kept=settings.model_monitor_reference_days + 14,
    )


def _scoring(model_settings: Mapping[str, Any]) -> Scoring:
    positive = model_settings.get("positive")
    tolerance = model_settings.get("tolerance")
    return Scoring(
        positive=(normalise(positive) or "1") if positive is not None else "1",
        tolerance=float(tolerance) if isinstance(tolerance, int | float) else None,
    )


async def watched_models(records: RecordStore, cap: int) -> list[str]:
    """The models watched: the ``cap`` with the most recent records, by name."""
    names = await records.names()
    if len(names) <= cap:
        return names
    infos = await records.info(names)
    infos.sort(key=lambda i: -(i.last_record_at or 0.0))
    return sorted(i.name for i in infos[:cap])


class ModelWatch:
    """A component (``start``/``stop``); ``run_once`` is one pass, for tests and tools."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = runtime.settings
        self._runtime = runtime
        self._interval_s = interval_s or settings.model_monitor_interval_s
        ttl = settings.monitor_lease_ttl_s or max(3 * self._interval_s, 5.0)
        self._lease_ms = int(ttl * 1000)
        self._clock = clock
        self._leases = MonitorState(runtime.redis)
        self._store = WatchStore(runtime.redis)
        self._records = RecordStore(runtime.redis, max_records=settings.model_max_records)
        self._token = uuid.uuid4().hex
        self._held: set[str] = set()
        self._references: dict[str, tuple[str, Mapping[str, Any] | None]] = {}
        self._periodic = Periodic(
            "model monitor",
            self.run_once,
            interval_s=self._interval_s,
            grace_s=max(5.0, self._interval_s),
            log=log,
        )

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        for name in list(self._held):
            with contextlib.suppress(Exception):
                await self._leases.release(lease_key(name), LEASE_PURPOSE, self._token)
        self._held.clear()

    async def _watched(self) -> list[str]:
        return await watched_models(self._records, self._runtime.settings.model_monitor_max_models)

    async def run_once(self) -> WatchPass:
        """Watch every model this process can lead."""
        result = WatchPass()
        metrics = self._runtime.metrics
        for name in await self._watched():
            key = lease_key(name)
            if not await self._leases.acquire(key, LEASE_PURPOSE, self._token, self._lease_ms):
                self._held.discard(name)
                result.skipped.append(name)
                continue
            self._held.add(name)
            try:
                await self.watch(name, result)
            except Exception:
                log.exception("model monitor: %s failed", name)
                metrics.model_monitor_errors.inc()
                result.failed.append(name)
        metrics.model_monitor_runs.inc()
        return result

    async def watch(self, name: str, result: WatchPass) -> dict[str, Any]:
        """One model: apply its feed, report, keep the report, alert on changes."""
        settings = self._runtime.settings
        now = self._clock()
        model_settings = await self._records.settings(name)
        drained = await drain(
            self._store,
            name,
            scoring=_scoring(model_settings),
            limits=limits(settings),
            now=now,
            budget=settings.model_monitor_batch_items,
        )
        if drained.raced:
            log.info("model monitor: %s was applied by another worker meanwhile", name)
        config = report_config(settings)
        state = await self._store.state(name)
        h, d = math.floor(now / 3600), math.floor(now / 86_400)
        hours = await self._store.buckets(name, "h", list(range(h - 23, h + 1)))
        days = await self._store.buckets(
            name, "d", list(range(d - 6 - config.reference_days, d + 1))
        )
        windows = Windows.of(
            {i: parse_bucket(b) for i, b in hours.items()},
            {i: parse_bucket(b) for i, b in days.items()},
            now,
            config.reference_days,
        )
        facts = Facts(
            labels_seen=[str(v) for v in orjson.loads(state.get("labels_seen") or "[]")],
            tolerance=_scoring(model_settings).tolerance,
            positive=_scoring(model_settings).positive,
            label_at=float(state["label_at"]) if float(state.get("label_at") or 0) > 0 else None,
            backlog=await self._store.backlog(name),
            skipped=int(state.get("skipped") or 0),
            reference_set=await self._reference_set(name),
        )
        report = build_report(name, windows, facts, config, now=now)
        previous = await self._store.report(name)
        await self._store.put_report(name, report, d, metrics_view(report))
        await self._store.trim_history(name, d - HISTORY_DAYS)
        result.analysed.append(name)
        await self._alert(name, previous, report, result)
        return report

    async def _reference_set(
        self, name: str
    ) -> Mapping[str, tuple[dict[str, float], float, bool]] | None:
        """Sketches of an uploaded reference set, per feature (cached per upload)."""
        stored = await self._records.reference(name)
        if stored is None or stored[0].get("source") != "uploaded":
            return None
        stamp = str(stored[0].get("created_at"))
        cached = self._references.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        reference = unpack(*stored)
        sketches = {
            column: (
                bin_counts(reference.rows[:, j]),
                float(reference.records),
                column in reference.categorical,
            )
            for j, column in enumerate(reference.columns)
        }
        self._references[name] = (stamp, sketches)
        return sketches

    async def _alert(
        self,
        name: str,
        previous: Mapping[str, Any] | None,
        report: Mapping[str, Any],
        result: WatchPass,
    ) -> None:
        webhooks = self._runtime.webhooks
        for change in transitions(previous, report):
            fingerprint = f"{change.event}:{change.subject}@{change.since}"
            at = float(report["analysed_at"])
            if not await self._store.first_notice(name, fingerprint, at, NOTICE_TTL_S):
                continue
            log.warning("model %s: %s", name, change.message)
            self._runtime.metrics.model_monitor_alerts.labels(change.event).inc()
            result.alerts.append(f"{change.event}:{name}:{change.subject}")
            if webhooks is not None and change.webhook:
                webhooks.send(change.event, lease_key(name), {"model": name, **change.data})
