"""sharpen: deterministic assignment, local evaluation and outcome tracking.

>>> with sharpen.Client("https://sharpen.internal", api_key) as client:  # doctest: +SKIP
...     assignment = client.assign("fraud-v7", user_id, {"country": "US"})
...     model = assignment.payload["model"]
...     client.track("fraud-v7", user_id, {"flagged": 1, "true_positive": 0})

The pure core (``bucket``, ``parse_config``, ``evaluate``) is the single
source of truth for bucketing; the service imports it too.
"""

from __future__ import annotations

from sharpen._async_client import AsyncClient
from sharpen._canonical import MAX_UNIT_ID, canonical
from sharpen._client import Client
from sharpen._config import (
    STATUSES,
    Config,
    ExperimentConfig,
    Status,
    Variant,
    parse_config,
    parse_experiment,
)
from sharpen._core import Mode
from sharpen._evaluation import assign_from_config, evaluate
from sharpen._exceptions import (
    ClientClosedError,
    ConfigError,
    HTTPStatusError,
    InvalidEventError,
    SharpenError,
    TransportError,
    UnsupportedHashVersionError,
)
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
from sharpen._models import REASONS, Assignment, Reason
from sharpen._retry import RetryPolicy
from sharpen._stats import ClientStats
from sharpen._version import __version__

__all__ = [
    "BUCKETS",
    "HOLDOUT_SALT",
    "HOLDOUT_SEED",
    "LAYER_SEED",
    "MAX_UNIT_ID",
    "REASONS",
    "STATUSES",
    "SUPPORTED_HASH_VERSIONS",
    "TRAFFIC_SEED",
    "VARIANT_SEED",
    "Assignment",
    "AsyncClient",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "Config",
    "ConfigError",
    "ExperimentConfig",
    "HTTPStatusError",
    "InvalidEventError",
    "Mode",
    "Reason",
    "RetryPolicy",
    "SharpenError",
    "Status",
    "TransportError",
    "UnsupportedHashVersionError",
    "Variant",
    "__version__",
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
