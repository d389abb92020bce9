"""Seeded simulated prediction records for the analysis tests."""

from __future__ import annotations

from typing import Any

import numpy as np

COUNTRIES = ("US", "BR", "DE", "FR", "IN")
DEVICES = ("ios", "android", "web", "tv")
PLANS = ("free", "pro")
T0 = 1_700_000_000.0


def records(
    n: int,
    *,
    seed: int,
    base_error: float = 0.08,
    planted: dict[str, str] | None = None,
    planted_error: float = 0.5,
    planted_confidence: float = 0.93,
    confidence: float = 0.7,
) -> list[dict[str, Any]]:
    """Label predictions with errors at ``base_error``, higher inside ``planted``."""
    rng = np.random.default_rng(seed)
    country = rng.choice(COUNTRIES, n)
    device = rng.choice(DEVICES, n)
    plan = rng.choice(PLANS, n)
    inside = np.ones(n, dtype=bool) if planted else np.zeros(n, dtype=bool)
    columns = {"country": country, "device": device, "plan": plan}
    for k, v in (planted or {}).items():
        inside &= columns[k] == v
    err = rng.random(n) < np.where(inside, planted_error, base_error)
    label = (rng.random(n) < 0.3).astype(int)
    conf = np.clip(rng.normal(np.where(inside, planted_confidence, confidence), 0.03), 0.0, 1.0)
    out = []
    for i in range(n):
        y = int(label[i])
        out.append(
            {
                "record_id": f"r{i}",
                "timestamp": T0 + i * 37.0,
                "prediction": 1 - y if err[i] else y,
                "label": y,
                "confidence": float(conf[i]),
                "attributes": {
                    "country": str(country[i]),
                    "device": str(device[i]),
                    "plan": str(plan[i]),
                },
            }
        )
    return out
