"""Every Redis key sharpen uses is built here.

Per-experiment keys carry the ``{experiment}`` hash tag, so every Lua script that
touches one experiment stays inside one Redis Cluster slot.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "PREFIX",
    "aggregate_hours",
    "aggregates",
    "aggregates_hour",
    "aggregation_meta",
    "audit",
    "batch_idempotency",
    "config_channel",
    "config_version",
    "dead_letters",
    "event_ids",
    "events_stream",
    "experiment",
    "experiment_state",
    "experiments_index",
    "exposed_units",
    "exposures_stream",
    "idempotency",
    "journal",
    "journal_entries",
    "journal_index",
    "journal_lines",
    "journal_order",
    "layer",
    "lease",
    "looks",
    "metrics_snapshot",
    "model_errors",
    "model_labels",
    "model_meta",
    "model_order",
    "model_records",
    "model_reference",
    "model_reference_rows",
    "model_settings",
    "model_tag",
    "model_watch_bucket",
    "model_watch_feed",
    "model_watch_history",
    "model_watch_metrics",
    "model_watch_notified",
    "model_watch_report",
    "model_watch_state",
    "models_index",
    "notified",
    "segment_candidates",
    "segment_ranked",
    "segment_state",
    "spec_versions",
    "state_deleted",
    "tag",
    "ui_session",
    "units",
]

PREFIX = "sharpen"


def tag(experiment_key: str) -> str:
    """The prefix of every key of one experiment: ``sharpen:{key}``."""
    return f"{PREFIX}:{{{experiment_key}}}"


def experiment(key: str) -> str:
    return f"{tag(key)}:exp"


def audit(key: str) -> str:
    return f"{tag(key)}:audit"


def spec_versions(key: str) -> str:
    return f"{tag(key)}:versions"


def events_stream(key: str) -> str:
    return f"{tag(key)}:events"


def exposures_stream(key: str) -> str:
    return f"{tag(key)}:exposures"


def exposed_units(key: str, version: int) -> str:
    return f"{tag(key)}:exposed:v{version}"


def event_ids(key: str) -> str:
    return f"{tag(key)}:event-ids"


def idempotency(key: str, idempotency_key: str) -> str:
    return f"{tag(key)}:idem:{idempotency_key}"


def aggregates(key: str) -> str:
    return f"{tag(key)}:agg"


def aggregates_hour(key: str, hour: int) -> str:
    """Deltas of the sufficient statistics of one hour (hours since the Unix epoch)."""
    return f"{tag(key)}:agg:h:{hour}"


def aggregate_hours(key: str) -> str:
    """The set of hours that have an ``aggregates_hour`` hash."""
    return f"{tag(key)}:agg:hours"


def aggregation_meta(key: str) -> str:
    """Counters of ingestion and aggregation (backlog, applied, excluded, dead, metrics)."""
    return f"{tag(key)}:agg:meta"


def units(key: str) -> str:
    """Per-unit running totals (one hash field per unit)."""
    return f"{tag(key)}:units"


def segment_state(key: str) -> str:
    """Segment rows of one experiment: each ranked value's promotion epoch (``p|seg|value``),
    each candidate's Space-Saving error (``e|seg|value``), epoch counters (``epoch|seg``)."""
    return f"{tag(key)}:seg"


def segment_ranked(key: str, segment: str) -> str:
    """The undeclared values of ``segment`` that have a row, scored by units (a zset)."""
    return f"{tag(key)}:seg:top:{segment}"


def segment_candidates(key: str, segment: str) -> str:
    """Space-Saving counters of the values of ``segment`` without a row (a zset, bounded)."""
    return f"{tag(key)}:seg:cand:{segment}"


def state_deleted(key: str) -> str:
    """When an ended experiment's state was deleted (a hash: ``at``, ``done``); kept."""
    return f"{tag(key)}:deleted"


def experiment_state(key: str, segments: Sequence[str]) -> list[str]:
    """Every key of one experiment's state: what retention deletes once it has ended
    (``SHARPEN_EXPERIMENT_STATE_RETENTION_S``). Not the spec, audit and versions (kept for
    good, with the journal), nor the hourly hashes (listed in ``aggregate_hours``) and the
    keys that expire by themselves (leases, idempotency). A new per-experiment key of
    state belongs here."""
    ranked = [k for s in segments for k in (segment_ranked(key, s), segment_candidates(key, s))]
    return [
        events_stream(key),
        exposures_stream(key),
        event_ids(key),
        units(key),
        aggregates(key),
        aggregate_hours(key),
        aggregation_meta(key),
        segment_state(key),
        *ranked,
        dead_letters(key),
        looks(key),
        metrics_snapshot(key),
        notified(key),
    ]


def dead_letters(key: str) -> str:
    """Stream entries the aggregator could not apply, kept for inspection."""
    return f"{tag(key)}:dead"


def batch_idempotency(client: str, idempotency_key: str) -> str:
    """The remembered answer of one ``POST /v1/events`` batch (client name + header value)."""
    return f"{PREFIX}:idem:{{{client}:{idempotency_key}}}"


def looks(key: str) -> str:
    return f"{tag(key)}:looks"


def lease(key: str, purpose: str) -> str:
    return f"{tag(key)}:lease:{purpose}"


def experiments_index() -> str:
    return f"{PREFIX}:experiments"


def layer(name: str) -> str:
    return f"{PREFIX}:layer:{{{name}}}"


def config_version() -> str:
    return f"{PREFIX}:config:version"


def config_channel() -> str:
    return f"{PREFIX}:config"


def metrics_snapshot(key: str) -> str:
    """The monitor's latest Prometheus view of one experiment (guardrails, SRM, units)."""
    return f"{tag(key)}:metrics"


def notified(key: str) -> str:
    """Fingerprints of the alerts already sent for one experiment (webhooks once each)."""
    return f"{tag(key)}:notified"


def _journal(name: str) -> str:
    # One hash tag for the journal's keys, so its Lua scripts stay in one cluster slot.
    return f"{PREFIX}:{{journal}}:{name}"


def journal_entries() -> str:
    """Experiment key -> its journal entry (JSON), kept forever."""
    return _journal("entries")


def journal_order() -> str:
    """Experiment keys in the order they ended."""
    return _journal("order")


def journal_lines() -> str:
    """Model line -> its current baseline (the last shipped variant), JSON."""
    return _journal("lines")


def ui_session(session_digest: str) -> str:
    """A dashboard session, by the SHA-256 of its id (the cookie value itself is never stored)."""
    return f"{PREFIX}:ui:session:{session_digest}"


def model_tag(name: str) -> str:
    """The prefix of every key of one monitored model: ``sharpen:{model:NAME}``."""
    return f"{PREFIX}:{{model:{name}}}"


def model_records(name: str) -> str:
    """record_id -> the prediction record (JSON) of one model."""
    return f"{model_tag(name)}:records"


def model_order(name: str) -> str:
    """record_ids in arrival order (a list; the oldest are trimmed first)."""
    return f"{model_tag(name)}:order"


def model_labels(name: str) -> str:
    """record_id -> a label that arrived after its record (JSON)."""
    return f"{model_tag(name)}:labels"


def model_meta(name: str) -> str:
    """Counters and times of one model (created_at, last_record_at, accepted, labels)."""
    return f"{model_tag(name)}:meta"


def model_reference(name: str) -> str:
    """What the reference of one model is (JSON: columns, source, period)."""
    return f"{model_tag(name)}:reference"


def model_reference_rows(name: str) -> str:
    """The reference rows of one model (base64 of little-endian float32, row-major)."""
    return f"{model_tag(name)}:reference:rows"


def model_settings(name: str) -> str:
    """Per-model analysis settings (JSON: ``tolerance`` of a regression model)."""
    return f"{model_tag(name)}:settings"


def model_errors(name: str) -> str:
    """The latest analysis' lever of every labelled error (JSON), for paging."""
    return f"{model_tag(name)}:errors"


def model_watch_feed(name: str) -> str:
    """A stream of what changed for the model monitor: accepted record ids, label changes
    (written by the records and labels scripts, consumed by the monitor)."""
    return f"{model_tag(name)}:mw:feed"


def model_watch_bucket(name: str, grain: str, index: int) -> str:
    """Sufficient statistics of the records predicted in one hour (``grain`` ``h``, hours
    since the epoch) or day (``d``, days since the epoch)."""
    return f"{model_tag(name)}:mw:{grain}:{index}"


def model_watch_state(name: str) -> str:
    """The monitor's state of one model: feed cursor, segment value counters, features."""
    return f"{model_tag(name)}:mw:state"


def model_watch_report(name: str) -> str:
    """The monitor's latest report of one model (JSON)."""
    return f"{model_tag(name)}:mw:report"


def model_watch_metrics(name: str) -> str:
    """The Prometheus view of the latest report (JSON: the fields ``/metrics`` renders),
    small enough to read for every model on each scrape."""
    return f"{model_tag(name)}:mw:metrics"


def model_watch_history(name: str) -> str:
    """Day (days since the epoch) -> that day's last report summary (JSON), for reviews."""
    return f"{model_tag(name)}:mw:history"


def model_watch_notified(name: str) -> str:
    """Fingerprints of the model alerts already sent (webhooks once each)."""
    return f"{model_tag(name)}:mw:notified"


def models_index() -> str:
    """The set of monitored model names."""
    return f"{PREFIX}:models"


def journal() -> str:
    """The list of journal entries written before the full journal exists (backtests)."""
    return f"{PREFIX}:{{journal}}:log"


def journal_index() -> str:
    """Backtest id (a digest of its inputs) -> its index in the ``journal()`` list."""
    return f"{PREFIX}:{{journal}}:log:index"
