"""Guardrail monitoring: the monitor loop, its lease, metric snapshots, webhooks, and what
happens when an experiment ends (journal, webhook).

Public entry points:

- :class:`Monitor` — the loop; ``await Monitor(runtime).run_once()`` runs one pass.
- :func:`on_lifecycle` — call after ``ExperimentStore.transition`` (journal, webhook).
- :func:`refresh_experiment_metrics` — before rendering ``GET /metrics``.
- :class:`WebhookSender`, :func:`sign`, :func:`verify` — signed webhooks.
"""

from __future__ import annotations

from service.monitor._lifecycle import ResultsFn, experiment_results, on_lifecycle
from service.monitor._loop import LEASE_PURPOSE, Monitor, PassReport
from service.monitor._sampler import ProcessSampler
from service.monitor._snapshot import (
    OTHER,
    build_snapshot,
    dump_snapshot,
    load_snapshot,
    refresh_experiment_metrics,
    segment_label,
)
from service.monitor._webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Webhook,
    WebhookSender,
    sign,
    verify,
)

__all__ = [
    "LEASE_PURPOSE",
    "OTHER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Monitor",
    "PassReport",
    "ProcessSampler",
    "ResultsFn",
    "Webhook",
    "WebhookSender",
    "build_snapshot",
    "dump_snapshot",
    "experiment_results",
    "load_snapshot",
    "on_lifecycle",
    "refresh_experiment_metrics",
    "segment_label",
    "sign",
    "verify",
]
