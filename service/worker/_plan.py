"""What the aggregator needs to know about one experiment, taken from its frozen spec."""

from __future__ import annotations

from dataclasses import dataclass

from service.spec import ENDED, ExperimentRecord

__all__ = ["AggregationPlan", "MetricPlan"]

_KIND_CODES = {"mean": "m", "proportion": "p", "ratio": "r"}


@dataclass(frozen=True, slots=True)
class MetricPlan:
    name: str
    kind: str
    """``m`` mean, ``p`` proportion, ``r`` ratio (the codes ``apply_batch.lua`` reads)."""
    value: str
    """The event value summed (mean), tested > 0 (proportion), or the ratio's numerator."""
    denominator: str | None
    covariate: str | None


@dataclass(frozen=True, slots=True)
class AggregationPlan:
    key: str
    version: int
    per_request: bool
    metrics: tuple[MetricPlan, ...]
    segments: tuple[str, ...]
    segment_limit: int
    """Undeclared values per segment with a row of their own, chosen by volume."""
    value_chars: int
    """Segment values from exposures are cut to this length (events are checked at ingest)."""
    variants: tuple[str, ...] = ()
    declared: tuple[tuple[str, ...], ...] = ()
    """Per segment, the values the spec declares (a row each, whatever their volume)."""
    segment_candidates: int = 1000
    """Values counted per segment to rank them by volume (Space-Saving counters)."""
    admit_until: float | None = None
    cell_seconds: int = 3600
    """Width of the time cells (``int(ts // cell_seconds)``): the spec's look cadence, at most
    an hour; the default keeps cells on clock hours."""
    """Once the experiment ended: its end. Later events still count for units already in
    the analysis, but bring no new unit in (they were served the baseline, not a variant)."""

    @classmethod
    def from_record(
        cls,
        record: ExperimentRecord,
        *,
        segment_limit: int,
        value_chars: int,
        segment_candidates: int = 1000,
    ) -> AggregationPlan:
        spec = record.spec
        metrics = tuple(
            MetricPlan(
                name=m.name,
                kind=_KIND_CODES[m.kind],
                value=(m.numerator if m.kind == "ratio" else m.value) or m.name,
                denominator=m.denominator if m.kind == "ratio" else None,
                covariate=m.covariate,
            )
            for m in spec.metrics
        )
        return cls(
            key=record.key,
            version=record.version,
            per_request=spec.per_request,
            metrics=metrics,
            segments=tuple(spec.segment_names),
            segment_limit=segment_limit,
            value_chars=value_chars,
            variants=tuple(spec.variant_keys()),
            declared=tuple(
                tuple(value[:value_chars] for value in spec.declared_values(name))
                for name in spec.segment_names
            ),
            segment_candidates=segment_candidates,
            admit_until=record.ended_at if record.status in ENDED else None,
            cell_seconds=spec.analysis.cell_seconds,
        )

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]
