"""sharpen: deterministic assignment, local evaluation and outcome tracking.

>>> with sharpen.Client("https://sharpen.internal", api_key) as client:  # doctest: +SKIP
...     assignment = client.assign("fraud-v7", user_id, {"country": "US"})
...     model = assignment.payload["model"]
...     client.track("fraud-v7", user_id, {"flagged": 1, "true_positive": 0})

The application's names are here; the pure core (hashing, bucketing, config parsing,
evaluation) is :mod:`sharpen.core`. Its names are still importable from ``sharpen``, with a
``DeprecationWarning``.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any as _Any

from sharpen import core
from sharpen._async_client import AsyncClient
from sharpen._canonical import MAX_UNIT_ID
from sharpen._client import Client
from sharpen._core import Mode
from sharpen._exceptions import (
    ClientClosedError,
    ConfigError,
    HTTPStatusError,
    InvalidEventError,
    SharpenError,
    TransportError,
    UnsupportedHashVersionError,
)
from sharpen._models import REASONS, Assignment, Reason
from sharpen._retry import RetryPolicy
from sharpen._stats import ClientStats
from sharpen._version import __version__

__all__ = [
    "MAX_UNIT_ID",
    "REASONS",
    "Assignment",
    "AsyncClient",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "ConfigError",
    "HTTPStatusError",
    "InvalidEventError",
    "Mode",
    "Reason",
    "RetryPolicy",
    "SharpenError",
    "TransportError",
    "UnsupportedHashVersionError",
    "__version__",
    "core",
]

_MOVED = frozenset(core.__all__) - frozenset(__all__)


def __getattr__(name: str) -> _Any:
    """The core's names, from where they were before :mod:`sharpen.core` (deprecated)."""
    if name in _MOVED:
        _warnings.warn(
            f"sharpen.{name} moved to sharpen.core.{name}; import it from sharpen.core",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(core, name)
    raise AttributeError(f"module 'sharpen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_MOVED])
