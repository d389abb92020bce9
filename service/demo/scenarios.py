"""The demo's two stories: a segment regression that the monitor rolls back, a clean win."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from service.demo.population import ModelQuality

__all__ = ["SCENARIOS", "Scenario", "ScenarioName", "demo_spec"]

ScenarioName = Literal["regression", "win"]

BASELINE = ModelQuality(recall=0.70, false_positive_rate=0.030, latency_ms=40.0)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: ScenarioName
    story: str
    expected: str
    baseline: ModelQuality
    candidate: ModelQuality


SCENARIOS: dict[str, Scenario] = {
    "regression": Scenario(
        name="regression",
        story="v7 is more precise and better overall, but misses fraud in Germany",
        expected="rolled_back",
        baseline=BASELINE,
        candidate=ModelQuality(
            recall=0.80,
            false_positive_rate=0.020,
            latency_ms=41.0,
            weak_segment=("country", "DE"),
            weak_recall=0.45,
        ),
    ),
    "win": Scenario(
        name="win",
        story="v7 is more precise and catches more fraud everywhere",
        expected="shipped",
        baseline=BASELINE,
        candidate=ModelQuality(recall=0.80, false_positive_rate=0.020, latency_ms=40.3),
    ),
}


def demo_spec(key: str, scenario: Scenario) -> dict[str, Any]:
    """The experiment the demo runs (min_days 0: a demo cannot wait two weeks)."""
    return {
        "key": key,
        "description": f"Demo ({scenario.name}): fraud model v7 against v6",
        "hypothesis": "v7's merchant features lift precision without hurting recall",
        "lever": "features",
        "impact": {"value_per_unit": 0.8, "currency": "USD"},
        "variants": [
            {"key": "baseline", "weight": 50, "payload": {"model": "fraud-v6"}},
            {"key": "candidate", "weight": 50, "payload": {"model": "fraud-v7"}},
        ],
        "baseline": "baseline",
        "segments": ["country", "device", "merchant_tier"],
        "metrics": [
            {
                "name": "precision",
                "kind": "ratio",
                "numerator": "true_positive",
                "denominator": "flagged",
                "role": "primary",
                "direction": "increase",
                "mde": 0.05,
                "baseline_mean": 0.78,
            },
            {
                "name": "recall",
                "kind": "ratio",
                "numerator": "true_positive",
                "denominator": "actual_positive",
                "role": "guardrail",
                "direction": "increase",
                "margin": 0.02,
            },
            {
                "name": "latency_ms",
                "kind": "ratio",
                "numerator": "latency_ms",
                "denominator": "transactions",
                "role": "guardrail",
                "direction": "decrease",
                "margin": 0.10,
            },
            {
                "name": "approved",
                "kind": "proportion",
                "value": "approved",
                "role": "secondary",
                "direction": "increase",
            },
        ],
        "analysis": {
            "alpha": 0.05,
            "power": 0.8,
            "design": "always_valid",
            "min_days": 0,
            "expected_daily_units": 20000,
            "correction": "holm",
        },
        "guardrails": {"auto_rollback": True},
    }
