"""The example spec shown in the OpenAPI docs (the same as ``examples/fraud-v7.yaml``)."""

from __future__ import annotations

from typing import Any

__all__ = ["FRAUD_V7"]

FRAUD_V7: dict[str, Any] = {
    "key": "fraud-v7",
    "description": "Fraud model v7 against v6",
    "hypothesis": "v7's new merchant features lift precision without hurting recall",
    "lever": "features",
    "impact": {"value_per_unit": 0.8, "currency": "USD"},
    "unit": "user",
    "variants": [
        {"key": "baseline", "weight": 50, "payload": {"model": "fraud-v6"}},
        {"key": "candidate", "weight": 50, "payload": {"model": "fraud-v7"}},
    ],
    "baseline": "baseline",
    "traffic": 1.0,
    "targeting": {"country": ["US", "CA"]},
    "segments": ["country", "device"],
    "metrics": [
        {
            "name": "precision",
            "kind": "ratio",
            "numerator": "true_positive",
            "denominator": "flagged",
            "role": "primary",
            "direction": "increase",
            "mde": 0.05,
            "baseline_mean": 0.62,
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
            "kind": "mean",
            "value": "latency_ms",
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
        "design": "group_sequential",
        "looks": 14,
        "min_days": 14,
        "expected_daily_units": 20000,
        "correction": "holm",
    },
    "guardrails": {"auto_rollback": True},
}
