"""Seeded historical paired records: both models on the same inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

SPEC: dict[str, Any] = {
    "key": "fraud-v7",
    "hypothesis": "v7 fixes errors without hurting recall anywhere",
    "lever": "features",
    "variants": [{"key": "baseline", "weight": 50}, {"key": "candidate", "weight": 50}],
    "baseline": "baseline",
    "segments": ["country"],
    "metrics": [
        {
            "name": "accuracy",
            "kind": "proportion",
            "value": "correct",
            "role": "primary",
            "direction": "increase",
            "mde": 0.02,
        },
        {
            "name": "recall",
            "kind": "ratio",
            "numerator": "true_positive",
            "denominator": "actual_positive",
            "role": "guardrail",
            "direction": "increase",
            "margin": 0.05,
        },
        {
            "name": "latency",
            "kind": "mean",
            "value": "latency_ms",
            "role": "secondary",
            "direction": "decrease",
        },
    ],
    "analysis": {"alpha": 0.05, "min_days": 14},
}


def paired(
    n: int, *, seed: int, base_error: float, candidate_error: dict[str, float], days: float = 20
) -> list[dict[str, Any]]:
    """The candidate errs where a shared draw falls below its (per-country) error rate."""
    rng = np.random.default_rng(seed)
    countries = sorted(candidate_error)
    country = rng.choice(countries, n)
    label = (rng.random(n) < 0.3).astype(int)
    u = rng.random(n)
    cand_rate = np.array([candidate_error[c] for c in country])
    out = []
    for i in range(n):
        y = int(label[i])
        out.append(
            {
                "record_id": f"h{i}",
                "timestamp": 1_700_000_000 + i * days * 86_400 / n,
                "label": y,
                "attributes": {"country": str(country[i])},
                "variants": {
                    "baseline": {
                        "prediction": 1 - y if u[i] < base_error else y,
                        "values": {"latency_ms": 40.0},
                    },
                    "candidate": {
                        "prediction": 1 - y if u[i] < cand_rate[i] else y,
                        "values": {"latency_ms": 41.0},
                    },
                },
            }
        )
    return out
