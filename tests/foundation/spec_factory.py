"""Valid specs to start from; tests change one thing at a time."""

from __future__ import annotations

import copy
from typing import Any

from service.spec.examples import FRAUD_V7


def fraud_spec(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(FRAUD_V7)
    spec.update(changes)
    return spec


def simple_spec(key: str = "exp-a", **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": key,
        "variants": [{"key": "control", "weight": 1}, {"key": "treatment", "weight": 1}],
        "baseline": "control",
        "metrics": [
            {
                "name": "conversion",
                "kind": "proportion",
                "value": "converted",
                "role": "primary",
                "mde": 0.05,
                "baseline_mean": 0.1,
            },
        ],
    }
    spec.update(changes)
    return spec
