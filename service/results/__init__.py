"""Experiment results and plans: the aggregator's cells through the stats engine."""

from __future__ import annotations

from service.results._build import build_results
from service.results._looks import LookPoint, primary_looks
from service.results._plan import planned_units_per_variant, spec_plan
from service.results._service import experiment_plan, experiment_results

__all__ = [
    "LookPoint",
    "build_results",
    "experiment_plan",
    "experiment_results",
    "planned_units_per_variant",
    "primary_looks",
    "spec_plan",
]
