"""The demo's two stories: a segment regression that the monitor rolls back, a clean win."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from service.demo.population import ModelQuality
from service.spec.examples import FRAUD_V7

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
    """The documented fraud-v7 example, adapted to a demo that cannot wait two weeks.

    Differences: all countries (no targeting), a third segment, latency as a ratio per
    transaction, a baseline precision that matches the simulated v6, and an always-valid
    design with no minimum duration.
    """
    spec = copy.deepcopy(FRAUD_V7)
    metrics = {m["name"]: m for m in spec["metrics"]}
    metrics["precision"]["baseline_mean"] = 0.78
    metrics["latency_ms"].update(kind="ratio", numerator="latency_ms", denominator="transactions")
    del metrics["latency_ms"]["value"]
    del spec["targeting"]
    spec.update(
        key=key,
        description=f"Demo ({scenario.name}): fraud model v7 against v6",
        segments=["country", "device", "merchant_tier"],
    )
    spec["analysis"].update(design="always_valid", min_days=0)
    return spec
