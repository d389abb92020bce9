"""The pure core of sharpen: hashing, bucketing, config parsing and evaluation. No I/O.

The single source of truth for which variant a unit gets: the clients evaluate with it
and the service imports it too, so every process buckets alike.

>>> from sharpen.core import evaluate, parse_experiment
>>> entry = parse_experiment({"key": "fraud-v7", "status": "running", "baseline": "a",
...     "variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]})
>>> evaluate(entry, "user-1").variant in ("a", "b")
True
"""

from __future__ import annotations

from sharpen._canonical import MAX_UNIT_ID, canonical
from sharpen._config import (
    STATUSES,
    Config,
    ExperimentConfig,
    Status,
    Variant,
    parse_config,
    parse_experiment,
)
from sharpen._evaluation import assign_from_config, evaluate
from sharpen._hashing import (
    BUCKETS,
    HOLDOUT_SALT,
    HOLDOUT_SEED,
    LAYER_SEED,
    SUPPORTED_HASH_VERSIONS,
    TRAFFIC_SEED,
    VARIANT_SEED,
    bucket,
    threshold,
    unit_hash,
    weight_boundaries,
)

__all__ = [
    "BUCKETS",
    "HOLDOUT_SALT",
    "HOLDOUT_SEED",
    "LAYER_SEED",
    "MAX_UNIT_ID",
    "STATUSES",
    "SUPPORTED_HASH_VERSIONS",
    "TRAFFIC_SEED",
    "VARIANT_SEED",
    "Config",
    "ExperimentConfig",
    "Status",
    "Variant",
    "assign_from_config",
    "bucket",
    "canonical",
    "evaluate",
    "parse_config",
    "parse_experiment",
    "threshold",
    "unit_hash",
    "weight_boundaries",
]
