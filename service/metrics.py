"""Every Prometheus metric sharpen exports, defined once, in one registry per app.

Two kinds of series:

- **Service metrics** (requests, assignments, rejected events, exposure buffer, Redis
  memory, monitor, webhooks) are ordinary prometheus-client metrics that the code updates
  where things happen, e.g. ``runtime.metrics.events_rejected.labels(reason).inc(n)``.
  With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory,
  cleared at each deploy): every process then writes its values there and ``GET /metrics``
  on any worker serves the sum over all of them (prometheus-client's multiprocess mode).
- **Experiment metrics** (guardrail status and effects, SRM, units, status, last analysis,
  and each experiment's pipeline: events accepted and duplicated, stream lengths, pending
  entries, aggregation lag) are computed by whichever process holds the experiment's
  monitor lease and kept in Redis as a snapshot (``service/monitor``); ``GET /metrics``
  renders them from the snapshots through :class:`ExperimentCollector`, so every process,
  worker or API, serves the same numbers and a series disappears with its snapshot. No
  label value is ever a unit id; segment values are bounded by the monitor (top N per
  attribute, then ``other``).
- **Model metrics** (``sharpen_model_*``: segment statuses, metrics per window, input
  drift, label lag and completeness) come the same way from the model monitor's reports
  (``service/modelwatch``) through :class:`ModelCollector`; their segments are the largest
  values per attribute (then ``other``), their inputs the model's first features.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.spec.lifecycle import ENDED, STATUSES

__all__ = [
    "BOUNDS",
    "GUARDRAIL_STATUS_CODES",
    "LATENCY_BUCKETS",
    "MODEL_ALERT_EVENTS",
    "MODEL_STATUS_CODES",
    "NAMESPACE",
    "STATUSES",
    "ExperimentCollector",
    "ExperimentSnapshot",
    "GuardrailSeries",
    "Metrics",
    "ModelCollector",
    "ModelSnapshot",
]

NAMESPACE = "sharpen"
GUARDRAIL_STATUS_CODES: Mapping[str, int] = {
    "ok": 0,
    "inconclusive": 1,
    "warning": 2,
    "breached": 3,
}
BOUNDS = ("estimate", "lower", "upper")
REJECT_REASONS = ("invalid", "unknown_experiment", "not_running", "too_large", "batch")
_REJECT_CODES = {"not_found": "unknown_experiment", "not_running": "not_running"}
EXPOSURE_DROP_REASONS = ("failed", "lost")
EXPOSURE_REFUSE_REASONS = ("busy", "unavailable")
MONITOR_ACTIONS = ("rollback", "breach_alert", "warning", "srm_alert", "ramp", "rollout_held")
WEBHOOK_OUTCOMES = ("delivered", "retried", "failed", "dropped")
AUTH_FAILURE_VIA = ("api_key", "login")
AUTH_REFUSAL_LIMITS = ("address", "global")
MODEL_STATUS_CODES: Mapping[str, int] = {"ok": 0, "warning": 1, "degraded": 2}
MODEL_ALERT_EVENTS = (
    "model.degraded",
    "model.warning",
    "model.recovered",
    "model.drift",
    "model.drift_cleared",
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class GuardrailSeries:
    """One guardrail row as exported: bounded labels, a status code, the relative effect."""

    metric: str
    variant: str
    segment: str
    status: int
    estimate: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class ExperimentSnapshot:
    """What the monitor last computed for one experiment, ready to render."""

    experiment: str
    analysed_at: float
    units: Mapping[str, int] = field(default_factory=dict)
    srm_p_value: float | None = None
    srm_ok: bool = True
    guardrails: Sequence[GuardrailSeries] = ()
    streams: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Per stream kind (``events``, ``exposures``): entries, and entries pending in a worker."""
    aggregation_lag_s: float | None = None
    events_accepted: int | None = None
    events_duplicates: int | None = None
    rollout_step: int | None = None
    """The rollout's current step (1 = first), for experiments with a rollout."""
    rollout_held: bool | None = None
    """Whether a guardrail warning or breach, or a sample ratio mismatch, holds the step."""


class ExperimentCollector(Collector):
    """Renders experiment series from the latest statuses and snapshots it was given."""

    def __init__(self) -> None:
        self._statuses: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._snapshots: dict[str, ExperimentSnapshot] = {}

    def update(
        self,
        statuses: Mapping[str, str],
        snapshots: Iterable[ExperimentSnapshot],
        started: Mapping[str, float] | None = None,
    ) -> None:
        """Replace the whole view: experiments absent here vanish from the exposition.

        ``started`` gives start times (Unix seconds) of the experiments that have started.
        """
        self._statuses = dict(statuses)
        self._started = dict(started or {})
        self._snapshots = {s.experiment: s for s in snapshots}

    def collect(self) -> Iterator[Metric]:
        statuses, snapshots, started = self._statuses, self._snapshots, self._started
        status = GaugeMetricFamily(
            f"{NAMESPACE}_experiment_status",
            "1 for the experiment's current lifecycle status, 0 for the others.",
            labels=["experiment", "status"],
        )
        for key in sorted(statuses):
            for name in STATUSES:
                status.add_metric([key, name], 1.0 if statuses[key] == name else 0.0)
        yield status

        starts = GaugeMetricFamily(
            f"{NAMESPACE}_experiment_started_timestamp_seconds",
            "Unix time the experiment started.",
            labels=["experiment"],
        )
        for key in sorted(started):
            starts.add_metric([key], started[key])
        yield starts

        units = GaugeMetricFamily(
            f"{NAMESPACE}_experiment_units",
            "Units in the analysis, per variant.",
            labels=["experiment", "variant"],
        )
        srm_p = GaugeMetricFamily(
            f"{NAMESPACE}_srm_p_value",
            "Sample-ratio-mismatch p-value (always valid).",
            labels=["experiment"],
        )
        srm_ok = GaugeMetricFamily(
            f"{NAMESPACE}_srm_ok",
            "1 when the stats engine finds no sample-ratio mismatch, else 0.",
            labels=["experiment"],
        )
        analysed = GaugeMetricFamily(
            f"{NAMESPACE}_last_analysis_timestamp_seconds",
            "Unix time of the monitor's last successful analysis (dead-man check).",
            labels=["experiment"],
        )
        g_status = GaugeMetricFamily(
            f"{NAMESPACE}_guardrail_status",
            "Guardrail status: 0 ok, 1 inconclusive, 2 warning, 3 breached.",
            labels=["experiment", "metric", "variant", "segment"],
        )
        g_effect = GaugeMetricFamily(
            f"{NAMESPACE}_guardrail_relative_effect",
            "Relative effect of the variant on the guardrail metric, with CI bounds.",
            labels=["experiment", "metric", "variant", "segment", "bound"],
        )
        for key in sorted(snapshots):
            snap = snapshots[key]
            analysed.add_metric([key], snap.analysed_at)
            for variant in sorted(snap.units):
                units.add_metric([key, variant], float(snap.units[variant]))
            if snap.srm_p_value is not None:
                srm_p.add_metric([key], snap.srm_p_value)
            srm_ok.add_metric([key], 1.0 if snap.srm_ok else 0.0)
            for g in snap.guardrails:
                labels = [key, g.metric, g.variant, g.segment]
                g_status.add_metric(labels, float(g.status))
                for bound, value in zip(BOUNDS, (g.estimate, g.lower, g.upper), strict=True):
                    if value is not None:
                        g_effect.add_metric([*labels, bound], value)
        yield from (units, srm_p, srm_ok, analysed, g_status, g_effect)
        yield from self._pipeline(snapshots)
        yield from self._rollouts(snapshots)

    @staticmethod
    def _rollouts(snapshots: Mapping[str, ExperimentSnapshot]) -> Iterator[Metric]:
        step = GaugeMetricFamily(
            f"{NAMESPACE}_rollout_step",
            "The rollout's current step (1 = first) of an experiment with a rollout.",
            labels=["experiment"],
        )
        held = GaugeMetricFamily(
            f"{NAMESPACE}_rollout_held",
            "1 when a guardrail warning or breach, or a sample ratio mismatch, holds the "
            "rollout at its step, else 0.",
            labels=["experiment"],
        )
        for key in sorted(snapshots):
            snap = snapshots[key]
            if snap.rollout_step is not None:
                step.add_metric([key], float(snap.rollout_step))
                held.add_metric([key], 1.0 if snap.rollout_held else 0.0)
        yield from (step, held)

    @staticmethod
    def _pipeline(snapshots: Mapping[str, ExperimentSnapshot]) -> Iterator[Metric]:
        accepted = CounterMetricFamily(
            f"{NAMESPACE}_events_accepted",
            "Events accepted for the experiment since it started.",
            labels=["experiment"],
        )
        duplicates = CounterMetricFamily(
            f"{NAMESPACE}_events_duplicates",
            "Events dropped as repeats of an earlier event_id.",
            labels=["experiment"],
        )
        length = GaugeMetricFamily(
            f"{NAMESPACE}_stream_length",
            "Entries in an experiment's Redis stream (events or exposures).",
            labels=["experiment", "stream"],
        )
        pending = GaugeMetricFamily(
            f"{NAMESPACE}_stream_pending",
            "Stream entries delivered to an aggregator and not yet applied.",
            labels=["experiment", "stream"],
        )
        lag = GaugeMetricFamily(
            f"{NAMESPACE}_aggregation_lag_seconds",
            "Age of the oldest stream entry not yet aggregated (0 when caught up).",
            labels=["experiment"],
        )
        for key in sorted(snapshots):
            snap = snapshots[key]
            if snap.events_accepted is not None:
                accepted.add_metric([key], float(snap.events_accepted))
            if snap.events_duplicates is not None:
                duplicates.add_metric([key], float(snap.events_duplicates))
            for stream in sorted(snap.streams):
                n, waiting = snap.streams[stream]
                length.add_metric([key, stream], float(n))
                pending.add_metric([key, stream], float(waiting))
            if snap.aggregation_lag_s is not None:
                lag.add_metric([key], snap.aggregation_lag_s)
        yield from (accepted, duplicates, length, pending, lag)


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """What the model monitor last reported for one model, ready to render (labels are
    bounded by the report: segments per attribute, attributes and features per model)."""

    model: str
    analysed_at: float
    statuses: Sequence[tuple[str, str, int]] = ()
    """(metric, segment, status code) of each decided segment x metric."""
    values: Sequence[tuple[str, str, str, float]] = ()
    """(metric, segment, window, value); window ``day``, ``week`` or ``reference``."""
    drift: Sequence[tuple[str, float, int]] = ()
    """(input, PSI, 1 if it drifts else 0)."""
    prediction_drift: float | None = None
    label_lag_s: float | None = None
    completeness: Mapping[str, float] = field(default_factory=dict)
    records: Mapping[str, float] = field(default_factory=dict)
    backlog: int = 0


class ModelCollector(Collector):
    """Renders the model monitor's series from the latest reports it was given."""

    def __init__(self) -> None:
        self._snapshots: dict[str, ModelSnapshot] = {}

    def update(self, snapshots: Iterable[ModelSnapshot]) -> None:
        """Replace the whole view: models absent here vanish from the exposition."""
        self._snapshots = {s.model: s for s in snapshots}

    def collect(self) -> Iterator[Metric]:
        model, per_window = ["model"], ["model", "window"]
        status = GaugeMetricFamily(
            f"{NAMESPACE}_model_segment_status",
            "Model segment x metric status: 0 ok, 1 warning, 2 degraded (worst of the day "
            "and week windows against the reference; not decided: absent).",
            labels=["model", "metric", "segment"],
        )
        value = GaugeMetricFamily(
            f"{NAMESPACE}_model_metric",
            "Model metric per segment and window (day, week, reference).",
            labels=["model", "metric", "segment", "window"],
        )
        drift = GaugeMetricFamily(
            f"{NAMESPACE}_model_feature_drift",
            "PSI of an input's last day against the reference (features; attribute:NAME).",
            labels=["model", "feature"],
        )
        drifting = GaugeMetricFamily(
            f"{NAMESPACE}_model_feature_drift_status",
            "1 when the input drifts (PSI over the threshold and the homogeneity test rejects).",
            labels=["model", "feature"],
        )
        prediction = GaugeMetricFamily(
            f"{NAMESPACE}_model_prediction_drift",
            "PSI of the prediction scores' last day.",
            labels=model,
        )
        lag = GaugeMetricFamily(
            f"{NAMESPACE}_model_label_lag_seconds",
            "Seconds since the model's latest label arrived.",
            labels=model,
        )
        complete = GaugeMetricFamily(
            f"{NAMESPACE}_model_label_completeness",
            "Share of the window's predictions that have a label.",
            labels=per_window,
        )
        records = GaugeMetricFamily(
            f"{NAMESPACE}_model_records", "Predictions in the window.", labels=per_window
        )
        analysed = GaugeMetricFamily(
            f"{NAMESPACE}_model_last_analysis_timestamp_seconds",
            "Unix time of the model monitor's last report (dead-man check).",
            labels=model,
        )
        backlog = GaugeMetricFamily(
            f"{NAMESPACE}_model_monitor_backlog",
            "Records and labels not yet applied by the monitor.",
            labels=model,
        )
        for name in sorted(self._snapshots):
            snap = self._snapshots[name]
            analysed.add_metric([name], snap.analysed_at)
            backlog.add_metric([name], float(snap.backlog))
            for metric, segment, code in snap.statuses:
                status.add_metric([name, metric, segment], float(code))
            for metric, segment, window, x in snap.values:
                value.add_metric([name, metric, segment, window], x)
            for feature, psi, flag in snap.drift:
                drift.add_metric([name, feature], psi)
                drifting.add_metric([name, feature], float(flag))
            if snap.prediction_drift is not None:
                prediction.add_metric([name], snap.prediction_drift)
            if snap.label_lag_s is not None:
                lag.add_metric([name], snap.label_lag_s)
            for window in sorted(snap.completeness):
                complete.add_metric([name, window], snap.completeness[window])
            for window in sorted(snap.records):
                records.add_metric([name, window], snap.records[window])
        yield from (status, value, drift, drifting, prediction, lag, complete, records)
        yield from (analysed, backlog)


class Metrics:
    """All of one app's metrics, in its own registry (tests build as many apps as they like)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, experiments: bool = True
    ) -> None:
        """``experiments=False`` leaves the experiment series out (``sharpen worker`` serves
        only its own counters; the API processes serve the experiments)."""
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r, ns = self.registry, NAMESPACE

        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            namespace=ns,
            registry=r,
        )
        self.http_request_duration = Histogram(
            "http_request_duration",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            namespace=ns,
            unit="seconds",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.assignments = Counter(
            "assignments",
            "Assignments served, per experiment and variant (in_experiment only).",
            ["experiment", "variant"],
            namespace=ns,
            registry=r,
        )
        self.events_rejected = Counter(
            "events_rejected",
            "Events refused, by reason (no experiment label: it may be unknown).",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self.exposure_buffer_size = Gauge(
            "exposure_buffer_size",
            "Exposures waiting in memory to be written to Redis.",
            namespace=ns,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.exposure_buffer_dropped = Counter(
            "exposure_buffer_dropped",
            "Admitted exposures not written: unencodable (failed) or lost at shutdown.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self.exposures_refused = Counter(
            "exposures_refused",
            "Exposures whose request was refused (429 busy: the experiment's share of the "
            "buffer is full; 503 unavailable: Redis cannot be written or shutting down).",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        # Redis memory (INFO memory, read at each scrape): one series each, no labels.
        self.redis_memory_used = Gauge(
            "redis_memory_used",
            "Memory Redis uses (INFO used_memory; summed over a cluster's masters).",
            namespace=ns,
            unit="bytes",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.redis_memory_peak = Gauge(
            "redis_memory_peak",
            "Peak memory Redis used since it started (INFO used_memory_peak).",
            namespace=ns,
            unit="bytes",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.redis_memory_limit = Gauge(
            "redis_memory_limit",
            "Redis maxmemory (0: no limit set; then the machine's memory is the limit).",
            namespace=ns,
            unit="bytes",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.monitor_runs = Counter(
            "monitor_runs",
            "Monitor passes over the running experiments.",
            namespace=ns,
            registry=r,
        )
        self.monitor_errors = Counter(
            "monitor_errors",
            "Experiments the monitor failed to analyse.",
            ["experiment"],
            namespace=ns,
            registry=r,
        )
        self.monitor_actions = Counter(
            "monitor_actions",
            "What the monitor did: rollbacks and alerts.",
            ["action"],
            namespace=ns,
            registry=r,
        )
        self.monitor_duration = Histogram(
            "monitor_pass_duration",
            "Time of one monitor pass over every experiment this process leads.",
            namespace=ns,
            unit="seconds",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome.",
            ["outcome"],
            namespace=ns,
            registry=r,
        )
        self.webhook_queue_size = Gauge(
            "webhook_queue_size",
            "Webhooks waiting to be sent.",
            namespace=ns,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.auth_failures = Counter(
            "auth_failures",
            "Failed authentications: an unknown API key, or a wrong key in the login form.",
            ["via"],
            namespace=ns,
            registry=r,
        )
        self.auth_refused = Counter(
            "auth_refused",
            "Requests refused unchecked (429) by a failed-authentication limit.",
            ["limit"],
            namespace=ns,
            registry=r,
        )
        self.journal_entries = Counter(
            "journal_entries",
            "Journal entries written, by final status.",
            ["status"],
            namespace=ns,
            registry=r,
        )
        self.model_monitor_runs = Counter(
            "model_monitor_runs",
            "Model monitor passes over the watched models.",
            namespace=ns,
            registry=r,
        )
        self.model_monitor_errors = Counter(
            "model_monitor_errors",
            "Models the model monitor failed to watch in a pass.",
            namespace=ns,
            registry=r,
        )
        self.model_monitor_alerts = Counter(
            "model_monitor_alerts",
            "Model alerts raised, by event (model.degraded, model.drift, ...).",
            ["event"],
            namespace=ns,
            registry=r,
        )
        self.experiments = ExperimentCollector()
        self.models = ModelCollector()
        self._serves_experiments = experiments
        self._before_collect: list[Callable[[], None]] = []
        if experiments:
            r.register(self.experiments)
            r.register(self.models)

        # Series whose label sets are known now exist from the start (rate() needs a zero).
        for reason in REJECT_REASONS:
            self.events_rejected.labels(reason)
        for reason in EXPOSURE_DROP_REASONS:
            self.exposure_buffer_dropped.labels(reason)
        for reason in EXPOSURE_REFUSE_REASONS:
            self.exposures_refused.labels(reason)
        for action in MONITOR_ACTIONS:
            self.monitor_actions.labels(action)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)
        for status in sorted(ENDED):
            self.journal_entries.labels(status)
        for via in AUTH_FAILURE_VIA:
            self.auth_failures.labels(via)
        for limit in AUTH_REFUSAL_LIMITS:
            self.auth_refused.labels(limit)
        for event in MODEL_ALERT_EVENTS:
            self.model_monitor_alerts.labels(event)

    def count_assignments(self, rows: Iterable[Sequence[object]]) -> None:
        """Count written exposure rows ``(experiment, unit_id, variant, ...)`` per experiment
        and variant: one ``inc`` per pair and batch, off the request path."""
        pairs: dict[tuple[str, str], int] = {}
        for row in rows:
            pair = (str(row[0]), str(row[2]))
            pairs[pair] = pairs.get(pair, 0) + 1
        for (experiment, variant), n in pairs.items():
            self.assignments.labels(experiment, variant).inc(n)

    def reject_events(self, errors: Iterable[Mapping[str, object]], batch: int) -> None:
        """Count a refused batch of ``batch`` events, one reason per event: the code of its
        first error (``events.N`` ``index``), or ``batch`` for the valid events refused with
        their batch (all-or-nothing)."""
        reasons: dict[object, str] = {}
        for error in errors:
            index = error.get("index")
            if index is not None and index not in reasons:
                reasons[index] = _REJECT_CODES.get(str(error.get("code")), "invalid")
        counted: dict[str, int] = {}
        for reason in reasons.values():
            counted[reason] = counted.get(reason, 0) + 1
        counted["batch"] = max(0, batch - len(reasons))
        for reason, n in counted.items():
            if n:
                self.events_rejected.labels(reason).inc(n)

    def before_collect(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` before every read (it merges values kept off the metrics, such as
        the per-worker request table, into them)."""
        self._before_collect.append(hook)

    def _collecting(self) -> None:
        for hook in self._before_collect:
            hook()

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type (all processes' values in multiprocess
        mode, plus this app's experiment collector)."""
        self._collecting()
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        if self._serves_experiments:
            merged.register(self.experiments)
            merged.register(self.models)
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """One sample's value from this registry (None when absent); handy in tests."""
        self._collecting()
        return self.registry.get_sample_value(name, dict(labels or {}))
