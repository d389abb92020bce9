"""Typed FastAPI dependencies: the runtime, the stores, and the caller's identity by scope.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in its thread
pool, a thread hop per dependency per request for what is an attribute lookup.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request

from service.assignment import Assigner
from service.auth import Identity, Scope, authorize, caller_of
from service.journal import Journal
from service.modelwatch import records_of
from service.runtime import Runtime
from service.store import AggregateStore, EventStore, ExperimentStore
from service.store.records import RecordStore

__all__ = [
    "AdminDep",
    "AggregatesDep",
    "AssignerDep",
    "ClientDep",
    "EventsDep",
    "ExperimentsDep",
    "JournalDep",
    "RecordsDep",
    "RuntimeDep",
    "identity",
]


T = TypeVar("T")


def _wired(part: T | None, factory: str) -> T:
    if part is None:
        raise RuntimeError(f"not wired: service.components.{factory} did not run")
    return part


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_experiments(runtime: RuntimeDep) -> ExperimentStore:
    return runtime.experiments


ExperimentsDep = Annotated[ExperimentStore, Depends(get_experiments)]


async def get_events(runtime: RuntimeDep) -> EventStore:
    return _wired(runtime.events, "add_ingestion")


EventsDep = Annotated[EventStore, Depends(get_events)]


async def get_aggregates(runtime: RuntimeDep) -> AggregateStore:
    return _wired(runtime.aggregates, "add_ingestion")


AggregatesDep = Annotated[AggregateStore, Depends(get_aggregates)]


def get_records(runtime: RuntimeDep) -> RecordStore:
    return records_of(runtime)


async def _records(runtime: RuntimeDep) -> RecordStore:
    return get_records(runtime)


RecordsDep = Annotated[RecordStore, Depends(_records)]


async def get_assigner(runtime: RuntimeDep) -> Assigner:
    return _wired(runtime.assigner, "add_assignment")


AssignerDep = Annotated[Assigner, Depends(get_assigner)]


async def get_journal(runtime: RuntimeDep) -> Journal:
    return _wired(runtime.journal, "add_monitoring")


JournalDep = Annotated[Journal, Depends(get_journal)]


def identity(request: Request, scope: Scope) -> Identity:
    """The caller :class:`~service.auth.Authenticate` resolved, if it carries ``scope``
    (401 / 403 otherwise)."""
    return authorize(caller_of(request.scope), scope)


async def require_admin(request: Request) -> Identity:
    return identity(request, "admin")


async def require_client(request: Request) -> Identity:
    return identity(request, "client")


AdminDep = Annotated[Identity, Depends(require_admin)]
ClientDep = Annotated[Identity, Depends(require_client)]
