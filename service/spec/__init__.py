"""Experiment specs: models, validation, lifecycle."""

from __future__ import annotations

from service.spec.lifecycle import (
    ACTIONS,
    ENDED,
    ENDING_ACTION,
    STATUSES,
    Action,
    EndedStatus,
    Status,
    next_status,
)
from service.spec.models import (
    Analysis,
    ExperimentSpec,
    GuardrailPolicy,
    Impact,
    Metric,
    Segment,
    Variant,
)
from service.spec.record import AuditEntry, ExperimentRecord
from service.spec.rollout import Rollout, RolloutState, RolloutStep, StepEntry
from service.spec.validation import check_spec, parse_spec

__all__ = [
    "ACTIONS",
    "ENDED",
    "ENDING_ACTION",
    "STATUSES",
    "Action",
    "Analysis",
    "AuditEntry",
    "EndedStatus",
    "ExperimentRecord",
    "ExperimentSpec",
    "GuardrailPolicy",
    "Impact",
    "Metric",
    "Rollout",
    "RolloutState",
    "RolloutStep",
    "Segment",
    "Status",
    "StepEntry",
    "Variant",
    "check_spec",
    "next_status",
    "parse_spec",
]
