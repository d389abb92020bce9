"""The model monitor: the deployed model watched between experiments.

Every accepted prediction record and label goes to a per-model feed in the same Redis
call that stores it. The monitor (a worker component beside the guardrail monitor, one
process per model through the monitor's lease) applies the feed to sufficient statistics
per hour and per day of prediction time, then reports, per segment x metric, the last
day and the last week against a reference period, with always-valid decisions whose
family-wise false-alarm rate over segments x metrics x windows is at most
``SHARPEN_MODEL_MONITOR_ALPHA``; input drift per feature and attribute (PSI with a
homogeneity test); label completeness and lag. Reports feed ``GET
/v1/models/{name}/monitor``, the ``sharpen_model_*`` Prometheus series, the dashboard's
model pages, webhooks (``model.degraded``, ``model.recovered``, ``model.drift``) and the
weekly review.

Modules: ``_contrib`` (what a record adds), ``_tracker`` (segment values by volume),
``_apply`` (feed -> buckets), ``_windows`` (buckets -> windows and segments),
``_metrics``, ``_drift``, ``_report`` (the report), ``_alerts`` (what changed),
``_watch`` (the loop), ``_export`` (Prometheus), ``_review`` and ``_review_md`` (the
weekly review), ``_lines`` (a line as the API and the dashboard read it: records,
analysis, review).
"""

from __future__ import annotations

from service.modelwatch._export import refresh_model_metrics, snapshot_of
from service.modelwatch._lines import (
    REVIEW_ANALYSES,
    add_labels,
    add_records,
    analysis_slots,
    gather_review,
    line_impact,
    model_analysis,
    parse_since,
    records_of,
    within,
)
from service.modelwatch._report import STATUS_CODES, ReportConfig, build_report
from service.modelwatch._review_md import review_markdown
from service.modelwatch._watch import (
    LEASE_PURPOSE,
    ModelWatch,
    WatchPass,
    lease_key,
    watched_models,
)

__all__ = [
    "LEASE_PURPOSE",
    "REVIEW_ANALYSES",
    "STATUS_CODES",
    "ModelWatch",
    "ReportConfig",
    "WatchPass",
    "add_labels",
    "add_records",
    "analysis_slots",
    "build_report",
    "gather_review",
    "lease_key",
    "line_impact",
    "model_analysis",
    "parse_since",
    "records_of",
    "refresh_model_metrics",
    "review_markdown",
    "snapshot_of",
    "watched_models",
    "within",
]
