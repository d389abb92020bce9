"""The guardrail monitor: every ``monitor_interval_s``, analyse each running experiment,
publish its metrics, alert, and roll it back when a guardrail is breached and the spec
says ``guardrails.auto_rollback``.

Several workers may run it: a per-experiment Redis lease makes one of them the monitor of
an experiment (it keeps the lease while it lives and renews it each pass), and the
lifecycle store's compare-and-set makes a rollback happen once even if two ever raced.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.errors import Conflict, NotFound
from service.monitor._lifecycle import ResultsFn, experiment_results, on_lifecycle
from service.monitor._snapshot import build_snapshot, dump_snapshot, load_snapshot, segment_label
from service.rollout import HELD_EVENT, Gate, ramp, rollout_gate
from service.rollout import describe_guardrail as _describe
from service.runtime import Periodic, Runtime
from service.spec import ENDED, ExperimentRecord
from service.store.aggregation import GROUP, AggregationStore
from service.store.monitor_state import MonitorState

__all__ = ["LEASE_PURPOSE", "Monitor", "PassReport"]

log = logging.getLogger("sharpen.monitor")

LEASE_PURPOSE = "monitor"
ACTOR = "monitor"
JOURNAL_GRACE_S = 30.0
_ENDINGS = frozenset({"ship", "rollback", "stop"})


@dataclass
class PassReport:
    """What one pass did (for logs and tests)."""

    analysed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    journaled: list[str] = field(default_factory=list)
    ramped: list[str] = field(default_factory=list)


class Monitor:
    """A component (``start``/``stop``); ``run_once`` is one pass, for tests and tools."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        results: ResultsFn = experiment_results,
        interval_s: float | None = None,
        lease_ttl_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = runtime.settings
        self._runtime = runtime
        self._results = results
        self._interval_s = interval_s or settings.monitor_interval_s
        ttl = lease_ttl_s or settings.monitor_lease_ttl_s or max(3 * self._interval_s, 5.0)
        self._lease_ms = int(ttl * 1000)
        self._clock = clock
        self._state = MonitorState(runtime.redis)
        self._streams = AggregationStore(runtime.redis)
        self._token = uuid.uuid4().hex
        self._held: set[str] = set()
        self._admitted: dict[str, dict[str, list[str]]] = {}
        self._periodic = Periodic(
            "monitor",
            self.run_once,
            interval_s=self._interval_s,
            grace_s=max(5.0, 2 * self._interval_s),
            log=log,
        )

    @property
    def token(self) -> str:
        return self._token

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        """Let the current pass finish (a rollback in progress gets its journal entry), then
        end the loop and give up this process's leases."""
        await self._periodic.stop()
        for key in list(self._held):
            with contextlib.suppress(Exception):
                await self._state.release(key, LEASE_PURPOSE, self._token)
        self._held.clear()

    async def run_once(self) -> PassReport:
        """Analyse every running experiment this process leads; journal any ended
        experiment that has no entry yet."""
        report = PassReport()
        metrics = self._runtime.metrics
        with metrics.monitor_duration.time():
            records = await self._runtime.experiments.list()
            for record in records:
                if record.status == "running":
                    await self._watch(record, report)
                elif record.key in self._held:
                    await self._let_go(record.key)
            await self._journal_missing([r for r in records if r.status in ENDED], report)
        metrics.monitor_runs.inc()
        return report

    async def _let_go(self, key: str) -> None:
        self._held.discard(key)
        self._admitted.pop(key, None)
        await self._state.release(key, LEASE_PURPOSE, self._token)

    async def _watch(self, record: ExperimentRecord, report: PassReport) -> None:
        key = record.key
        if not await self._state.acquire(key, LEASE_PURPOSE, self._token, self._lease_ms):
            self._held.discard(key)
            self._admitted.pop(key, None)
            report.skipped.append(key)
            return
        self._held.add(key)
        try:
            record = await self._runtime.experiments.get(key)  # fresh, now that we lead it
        except NotFound:
            await self._let_go(key)
            return
        if record.status != "running":
            await self._let_go(key)
            return
        try:
            doc = await self._results(self._runtime, key)
        except Exception:
            log.exception("monitor: analysis of %s failed", key)
            self._runtime.metrics.monitor_errors.labels(key).inc()
            report.failed.append(key)
            return
        report.analysed.append(key)
        gate = rollout_gate(record, doc, self._clock())
        try:  # before acting, so that Prometheus sees the breach that causes a rollback
            await self._publish(key, doc, gate)
        except Exception:  # the series go stale (AnalysisStale); the guardrails still act
            log.exception("monitor: publishing the metrics of %s failed", key)
            self._runtime.metrics.monitor_errors.labels(key).inc()
        await self._act(record, doc, report, gate)

    async def _publish(self, key: str, doc: Mapping[str, Any], gate: Gate | None = None) -> None:
        admitted = self._admitted.get(key)
        if admitted is None:  # new leader: continue the previous leader's label choices
            raw = (await self._state.snapshots([key])).get(key)
            admitted = load_snapshot(raw)[1] if raw else {}
            self._admitted[key] = admitted
        now = self._clock()
        snapshot = build_snapshot(
            {**doc, "experiment": key},
            admitted=admitted,
            max_values=self._runtime.settings.metrics_segment_values_max,
            at=now,
        )
        if gate is not None:
            snapshot = replace(snapshot, rollout_step=gate.step, rollout_held=gate.state == "held")
        try:
            stats = await self._streams.stream_stats(key)
            oldest = await self._state.oldest_unprocessed(key, GROUP)
        except Exception:  # the pipeline series are missing this pass; the rest is published
            log.exception("monitor: stream statistics of %s unavailable", key)
        else:
            snapshot = replace(
                snapshot,
                streams={
                    "events": (stats.events_length, stats.events_pending),
                    "exposures": (stats.exposures_length, stats.exposures_pending),
                },
                aggregation_lag_s=0.0 if oldest is None else max(0.0, now - oldest),
                events_accepted=stats.ingested,
                events_duplicates=stats.duplicates,
            )
        await self._state.put_snapshot(key, dump_snapshot(snapshot, admitted))

    async def _notice(self, key: str, fingerprint: str) -> bool:
        return await self._state.first_notice(key, fingerprint, self._clock())

    async def _act(
        self,
        record: ExperimentRecord,
        doc: Mapping[str, Any],
        report: PassReport,
        gate: Gate | None = None,
    ) -> None:
        key, spec = record.key, record.spec
        metrics, webhooks = self._runtime.metrics, self._runtime.webhooks
        rows = [g for g in doc.get("guardrails") or [] if isinstance(g, Mapping)]
        breached = [g for g in rows if g.get("status") == "breached"]
        warnings = [g for g in rows if g.get("status") == "warning"]
        bounded = self._runtime.settings.metrics_segment_values_max
        for row in breached:
            label = segment_label(row.get("segment"), self._admitted.get(key, {}), bounded)
            if await self._notice(
                key, f"breached:{row.get('metric')}:{row.get('variant')}:{label}"
            ):
                log.warning("%s: %s", key, _describe(row))
                metrics.monitor_actions.labels("breach_alert").inc()
                report.alerts.append(f"breached:{key}:{row.get('metric')}:{label}")
                if webhooks is not None:
                    webhooks.send(
                        "guardrail.breached",
                        key,
                        {**row, "auto_rollback": spec.guardrails.auto_rollback},
                        spec.webhooks,
                    )
        for row in warnings:
            label = segment_label(row.get("segment"), self._admitted.get(key, {}), bounded)
            if await self._notice(key, f"warning:{row.get('metric')}:{row.get('variant')}:{label}"):
                log.warning("%s: %s", key, _describe(row))
                metrics.monitor_actions.labels("warning").inc()
                report.alerts.append(f"warning:{key}:{row.get('metric')}:{label}")
        srm = doc.get("srm")
        if isinstance(srm, Mapping) and srm.get("ok") is False and await self._notice(key, "srm"):
            segments = srm.get("segments") or []
            flagged = [f.get("segment") for f in segments if isinstance(f, Mapping)]
            log.warning(
                "%s: sample ratio mismatch (overall p=%s; segments flagged: %s)",
                key,
                srm.get("p_value"),
                flagged or "none",
            )
            metrics.monitor_actions.labels("srm_alert").inc()
            report.alerts.append(f"srm:{key}")
            if webhooks is not None:
                webhooks.send(
                    "srm.mismatch",
                    key,
                    {"p_value": srm.get("p_value"), "units": doc.get("units")},
                    spec.webhooks,
                )
        if breached and spec.guardrails.auto_rollback:
            await self._rollback(record, doc, self._worst(record, breached), report)
        elif gate is not None:
            await self._gate(record, doc, gate, report)

    async def _gate(
        self, record: ExperimentRecord, doc: Mapping[str, Any], gate: Gate, report: PassReport
    ) -> None:
        """Say once per step that a rollout is held; ramp it when its gate passes."""
        key, metrics = record.key, self._runtime.metrics
        if gate.state == "held" and await self._notice(key, f"rollout_held:{gate.step}"):
            log.warning(
                "%s: rollout held at step %d (traffic %g): %s",
                key,
                gate.step,
                gate.traffic,
                "; ".join(gate.held_by),
            )
            metrics.monitor_actions.labels("rollout_held").inc()
            report.alerts.append(f"rollout_held:{key}:{gate.step}")
            if self._runtime.webhooks is not None:
                self._runtime.webhooks.send(HELD_EVENT, key, gate.to_dict(), record.spec.webhooks)
        if not gate.advance:
            return
        reason = f"gate passed at step {gate.step}: {gate.step_units:,} units, no guardrail at risk"
        try:
            await ramp(self._runtime, record, doc, ACTOR, reason=reason, now=self._clock())
        except Conflict as exc:  # someone ramped or ended it meanwhile
            log.info("monitor: ramp of %s not needed: %s", key, exc)
            return
        metrics.monitor_actions.labels("ramp").inc()
        report.ramped.append(key)

    @staticmethod
    def _worst(record: ExperimentRecord, breached: list[Mapping[str, Any]]) -> Mapping[str, Any]:
        directions = {m.name: m.direction for m in record.spec.metrics}

        def harm(row: Mapping[str, Any]) -> float:
            estimate = (row.get("relative") or {}).get("estimate")
            if not isinstance(estimate, int | float) or not math.isfinite(estimate):
                return -math.inf
            return -estimate if directions.get(str(row.get("metric"))) != "decrease" else estimate

        return max(breached, key=harm)

    async def _rollback(
        self,
        record: ExperimentRecord,
        doc: Mapping[str, Any],
        row: Mapping[str, Any],
        report: PassReport,
    ) -> None:
        detail = {
            "reason": _describe(row),
            "metric": row.get("metric"),
            "variant": row.get("variant"),
            "segment": row.get("segment"),
            "relative": row.get("relative"),
        }
        try:
            ended = await self._runtime.experiments.transition(
                record.key, "rollback", ACTOR, detail=detail
            )
        except Conflict as exc:  # someone ended it meanwhile: nothing left to do
            log.info("monitor: rollback of %s not needed: %s", record.key, exc)
            return
        log.warning("monitor rolled back %s: %s", record.key, detail["reason"])
        self._runtime.metrics.monitor_actions.labels("rollback").inc()
        report.rolled_back.append(record.key)
        if await on_lifecycle(self._runtime, ended, ACTOR, results=doc) is not None:
            report.journaled.append(record.key)
        await self._let_go(record.key)

    async def _journal_missing(self, ended: list[ExperimentRecord], report: PassReport) -> None:
        journal = self._runtime.journal
        now = self._clock()
        # The API journals what it ends; give it time before writing in its place.
        settled = [r for r in ended if r.ended_at is None or now - r.ended_at > JOURNAL_GRACE_S]
        if journal is None or not settled:
            return
        for key in await journal.missing([r.key for r in settled]):
            # Ended, yet not journaled: the API's journal write failed, or predates it.
            if not await self._state.acquire(key, "journal", self._token, self._lease_ms):
                continue
            try:
                record = await self._runtime.experiments.get(key)
                ending = next((a for a in reversed(record.audit) if a.action in _ENDINGS), None)
                actor = ending.actor if ending else "unknown"
                entry = await on_lifecycle(self._runtime, record, actor, compute=self._results)
                if entry is not None:
                    report.journaled.append(key)
            finally:
                await self._state.release(key, "journal", self._token)
