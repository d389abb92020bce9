"""A seeded scenario: a ranker candidate that lifts clicks but slows mobile down.

Events go through ``POST /v1/events`` and are counted by the real aggregator; they are
spread over the past hours so the hourly timeline and the group-sequential looks exist.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tests._factories import metric, spec

KEY = "ranker-v2"
UNITS = 1200
HOURS = 6


def scenario_spec(key: str = KEY) -> dict[str, Any]:
    return spec(
        key,
        arms=("control", "treatment"),
        weight=1,
        models=("ranker-v1", "ranker-v2"),
        description="Ranker v2 against v1",
        hypothesis="v2's fresher features lift click-through without slowing pages down",
        lever="features",
        segments=["device"],
        metrics=[
            metric("ctr", value="clicked", role="primary", mde=0.25, baseline_mean=0.3),
            metric("latency_ms", "mean", role="guardrail", direction="decrease", margin=0.05),
        ],
        analysis={"looks": 4, "min_days": 7, "expected_daily_units": 5000},
    )


def scenario_events(key: str = KEY, units: int = UNITS, seed: int = 3) -> list[dict[str, Any]]:
    """One event per unit; treatment on mobile is 30% slower (a breached segment)."""
    rng = np.random.default_rng(seed)
    now = time.time()
    first_hour = (int(now) // 3600 - HOURS) * 3600
    events = []
    for i in range(units):
        variant = "treatment" if i % 2 else "control"
        device = "mobile" if (i // 2) % 2 else "desktop"
        slow = variant == "treatment" and device == "mobile"
        clicked = float(rng.random() < (0.36 if variant == "treatment" else 0.3))
        latency = float(rng.normal(130.0 if slow else 100.0, 5.0))
        hour = first_hour + 3600 * (i * HOURS // units)
        events.append(
            {
                "event_id": f"{key}-e{i}",
                "experiment": key,
                "unit_id": f"user-{i}",
                "variant": variant,
                "timestamp": hour + 60 + (i % 50),
                "values": {"clicked": clicked, "latency_ms": latency},
                "attributes": {"device": device},
            }
        )
    return events
