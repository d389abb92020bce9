"""Where the dashboard's numbers come from: the same internal functions the JSON API calls.

Tests swap the whole thing with ``app.dependency_overrides[get_sources]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from fastapi import Depends

from service.modelwatch import analysis_slots, line_impact, model_analysis, records_of
from service.results import experiment_plan, experiment_results, spec_plan
from service.runtime import Runtime
from service.spec import ExperimentSpec, check_spec

__all__ = [
    "Doc",
    "ServiceSources",
    "Sources",
    "SourcesDep",
    "adhoc_spec",
    "get_sources",
]

Doc = dict[str, Any]


class Sources(Protocol):
    async def results(self, runtime: Runtime, key: str) -> Doc | None: ...

    async def plan(self, runtime: Runtime, key: str) -> Doc | None: ...

    async def plan_adhoc(self, runtime: Runtime, inputs: Mapping[str, Any]) -> Doc | None: ...

    async def journal(self, runtime: Runtime) -> Doc | None: ...

    async def analysis(self, runtime: Runtime, model: str) -> Doc | None: ...

    async def models(self, runtime: Runtime) -> list[Doc] | None: ...


def _doc(value: Any) -> Doc | None:
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object from the source, got {type(value).__name__}")
    return value


def _info(info: Any) -> Doc:
    if dataclasses.is_dataclass(info) and not isinstance(info, type):
        return dataclasses.asdict(info)
    return _doc(info) or {}


class ServiceSources:
    """The real sources: results and plans (``service.results``), journal, model analysis."""

    async def results(self, runtime: Runtime, key: str) -> Doc | None:
        return await experiment_results(runtime, key)

    async def plan(self, runtime: Runtime, key: str) -> Doc | None:
        return await experiment_plan(runtime, key)

    async def plan_adhoc(self, runtime: Runtime, inputs: Mapping[str, Any]) -> Doc | None:
        """The plan of a one-metric spec built from ``inputs`` (as ``POST /v1/plan`` does)."""
        return await asyncio.to_thread(spec_plan, check_spec(adhoc_spec(inputs)))

    async def journal(self, runtime: Runtime) -> Doc | None:
        journal = getattr(runtime, "journal", None)
        if journal is None:
            return None
        entries = await journal.entries()
        lines = await journal.lines()
        return {
            "entries": [_doc(e) for e in reversed(entries)],
            "lines": [_doc(line) for line in lines],
            "backtests": await journal.backtests(),
        }

    async def analysis(self, runtime: Runtime, model: str) -> Doc | None:
        return await model_analysis(
            records_of(runtime),
            model,
            impact=await line_impact(runtime, model),
            slots=analysis_slots(runtime),
        )

    async def models(self, runtime: Runtime) -> list[Doc] | None:
        store = records_of(runtime)
        infos = await store.info(await store.names())
        return [_info(info) for info in infos]


def adhoc_spec(inputs: Mapping[str, Any]) -> ExperimentSpec:
    """A spec with one primary metric and ``variants`` equal arms, for planning only."""
    metric: dict[str, Any] = {
        "name": "primary",
        "kind": inputs["kind"],
        "value": "value",
        "role": "primary",
        "direction": "increase",
        "mde": inputs["mde"],
        "baseline_mean": inputs["baseline_mean"],
    }
    if inputs.get("baseline_sd") is not None:
        metric["baseline_sd"] = inputs["baseline_sd"]
    variants = [{"key": f"v{i}", "weight": 1} for i in range(int(inputs["variants"]))]
    return ExperimentSpec.model_validate(
        {
            "key": "plan",
            "variants": variants,
            "baseline": "v0",
            "metrics": [metric],
            "analysis": {
                "alpha": inputs["alpha"],
                "power": inputs["power"],
                "design": inputs["design"],
                "looks": inputs["looks"],
                "min_days": inputs["min_days"],
                "expected_daily_units": inputs["expected_daily_units"],
            },
        }
    )


def get_sources() -> Sources:
    return ServiceSources()


SourcesDep = Annotated[Sources, Depends(get_sources)]
