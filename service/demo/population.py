"""A seeded population of card holders and two fraud models, v6 and v7.

Everything is drawn from one ``numpy`` generator, so a seed reproduces the demo exactly.
Per transaction the models flag fraud with a known recall and false-positive rate; the
candidate's recall can be made worse in one segment to show a segment regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SEGMENTS", "ModelQuality", "Population", "Unit"]

SEGMENTS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "country": (("US", "CA", "DE", "FR"), (0.40, 0.15, 0.25, 0.20)),
    "device": (("mobile", "desktop"), (0.6, 0.4)),
    "merchant_tier": (("small", "mid", "large"), (0.5, 0.3, 0.2)),
}


@dataclass(frozen=True, slots=True)
class ModelQuality:
    """How a model behaves: recall, false-positive rate, latency; optional weak segment."""

    recall: float
    false_positive_rate: float
    latency_ms: float
    weak_segment: tuple[str, str] | None = None
    weak_recall: float = 0.0


@dataclass(frozen=True, slots=True)
class Unit:
    unit_id: str
    attributes: dict[str, str]
    transactions: int


@dataclass
class Population:
    seed: int
    fraud_rate: float = 0.15
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def units(self, count: int) -> list[Unit]:
        out = []
        for i in range(count):
            attrs = {
                name: str(self.rng.choice(values, p=probs))
                for name, (values, probs) in SEGMENTS.items()
            }
            out.append(Unit(f"user-{self.seed}-{i}", attrs, 1 + int(self.rng.poisson(2.0))))
        return out

    def outcomes(self, unit: Unit, model: ModelQuality) -> list[dict[str, float]]:
        """One event per transaction: what the model flagged and what was fraud."""
        recall = model.recall
        if model.weak_segment is not None:
            name, value = model.weak_segment
            if unit.attributes.get(name) == value:
                recall = model.weak_recall
        events = []
        for _ in range(unit.transactions):
            fraud = self.rng.random() < self.fraud_rate
            flagged = self.rng.random() < (recall if fraud else model.false_positive_rate)
            events.append(
                {
                    "true_positive": float(fraud and flagged),
                    "flagged": float(flagged),
                    "actual_positive": float(fraud),
                    "latency_ms": float(max(1.0, self.rng.normal(model.latency_ms, 8.0))),
                    "transactions": 1.0,
                    "approved": float(not flagged),
                }
            )
        return events
