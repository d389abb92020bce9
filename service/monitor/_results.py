"""How the monitor gets an experiment's results document (docs/results.md)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from service.runtime import Runtime

__all__ = ["ResultsFn", "experiment_results"]

ResultsFn = Callable[[Runtime, str], Awaitable[Mapping[str, Any]]]
"""``async (runtime, key) -> results document``; injectable for tests and backtests."""


async def experiment_results(runtime: Runtime, key: str) -> Mapping[str, Any]:
    """``service.results.experiment_results``, looked up when first needed."""
    module = importlib.import_module("service.results")
    compute: ResultsFn = module.experiment_results
    return await compute(runtime, key)
