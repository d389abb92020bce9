"""Background loops: the aggregator (streams → sufficient statistics)."""

from __future__ import annotations

from service.worker._aggregator import Aggregator, consumer_name
from service.worker._plan import AggregationPlan, MetricPlan
from service.worker._preaggregate import PreparedBatch, prepare

__all__ = [
    "AggregationPlan",
    "Aggregator",
    "MetricPlan",
    "PreparedBatch",
    "consumer_name",
    "prepare",
]
