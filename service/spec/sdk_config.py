"""The SDK's view of an experiment: what ``GET /v1/config`` serves and evaluation reads."""

from __future__ import annotations

from typing import Any

from service.spec.record import ExperimentRecord

__all__ = ["HASH_VERSION", "sdk_entry"]

HASH_VERSION = 1


def sdk_entry(record: ExperimentRecord) -> dict[str, Any]:
    """One experiment's assignment data, in the config document's JSON shape."""
    spec = record.spec
    return {
        "key": record.key,
        "version": record.version,
        "status": record.status,
        "salt": spec.hash_salt,
        "hash_version": HASH_VERSION,
        "variants": [
            {"key": v.key, "weight": v.weight, "payload": v.payload} for v in spec.variants
        ],
        "baseline": spec.baseline,
        "shipped_variant": record.shipped_variant,
        "traffic": record.current_traffic,
        "targeting": {k: list(v) for k, v in spec.targeting.items()},
        "layer": spec.layer,
        "layer_range": list(record.layer_range) if record.layer_range else None,
        "holdout": spec.holdout,
    }
