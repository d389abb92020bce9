"""Where the dashboard's numbers come from: the same internal functions the JSON API calls.

Features land independently; a source whose module is not installed yet answers None
and the page says so. Tests swap the whole thing with
``app.dependency_overrides[get_sources]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import Annotated, Any, Protocol

from fastapi import Depends

from service.errors import NotFound
from service.runtime import Runtime
from service.spec import ExperimentSpec, check_spec

__all__ = [
    "Doc",
    "ServiceSources",
    "Sources",
    "SourcesDep",
    "adhoc_spec",
    "call",
    "get_sources",
    "optional_function",
]

Doc = dict[str, Any]


class Sources(Protocol):
    async def results(self, runtime: Runtime, key: str) -> Doc | None: ...

    async def plan(self, runtime: Runtime, key: str) -> Doc | None: ...

    async def plan_adhoc(self, runtime: Runtime, inputs: Mapping[str, Any]) -> Doc | None: ...

    async def journal(self, runtime: Runtime) -> Doc | None: ...

    async def analysis(self, runtime: Runtime, model: str) -> Doc | None: ...

    async def models(self, runtime: Runtime) -> list[Doc] | None: ...


def _module(name: str) -> ModuleType | None:
    """The module, or None when it (not one of its own imports) does not exist yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


def optional_function(module: str, name: str) -> Any | None:
    """``module.name`` when both exist (features land independently), else None."""
    found = _module(module)
    return None if found is None else getattr(found, name, None)


async def call(function: Any, *args: Any) -> Any:
    value = function(*args)
    if inspect.isawaitable(value):
        value = await value
    return value


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
        function = optional_function("service.results", "experiment_results")
        return None if function is None else _doc(await call(function, runtime, key))

    async def plan(self, runtime: Runtime, key: str) -> Doc | None:
        function = optional_function("service.results", "experiment_plan")
        return None if function is None else _doc(await call(function, runtime, key))

    async def plan_adhoc(self, runtime: Runtime, inputs: Mapping[str, Any]) -> Doc | None:
        """The plan of a one-metric spec built from ``inputs`` (as ``POST /v1/plan`` does)."""
        function = optional_function("service.results", "spec_plan")
        if function is None:
            return None
        return _doc(await call(function, check_spec(adhoc_spec(inputs))))

    async def journal(self, runtime: Runtime) -> Doc | None:
        journal = getattr(runtime, "journal", None)
        if journal is None:
            return None
        entries = await journal.entries()
        lines = await journal.lines()
        return {
            "entries": [_doc(e) for e in reversed(entries)],
            "lines": [_doc(line) for line in lines],
        }

    def _records(self, runtime: Runtime) -> Any | None:
        get_records = optional_function("service.api.deps", "get_records")
        return None if get_records is None else get_records(runtime)

    async def analysis(self, runtime: Runtime, model: str) -> Doc | None:
        analysis = _module("service.analysis")
        store = self._records(runtime)
        if analysis is None or store is None:
            return None
        if not await store.exists(model):
            raise NotFound(f"model {model!r} has no records")
        records = await store.read(model)
        frozen = await store.reference(model)
        reference = None if frozen is None else analysis.Reference.from_dict(frozen)
        report = await asyncio.to_thread(
            analysis.analyze, records, analysis.AnalysisParams(), reference
        )
        return {"model": model, "stored": len(records), **report}

    async def models(self, runtime: Runtime) -> list[Doc] | None:
        store = self._records(runtime)
        if store is None:
            return None
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
