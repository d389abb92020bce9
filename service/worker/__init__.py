"""Background loops: the aggregator (streams → sufficient statistics)."""

from __future__ import annotations

from service.runtime import Runtime
from service.worker._aggregator import Aggregator, consumer_name
from service.worker._plan import AggregationPlan, MetricPlan
from service.worker._preaggregate import PreparedBatch, prepare

__all__ = [
    "AggregationPlan",
    "Aggregator",
    "MetricPlan",
    "PreparedBatch",
    "add_aggregator",
    "consumer_name",
    "prepare",
]


def add_aggregator(runtime: Runtime) -> None:
    """Component factory: run the aggregator inside the app when ``settings.run_worker``."""
    if runtime.settings.run_worker:
        runtime.components.append(Aggregator(runtime.settings))
