"""What one running app holds: settings, the Redis client, the stores and background parts.

Built by :func:`service.app.create_app`'s lifespan and kept on ``app.state.runtime``;
nothing here is a module-level singleton.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from service.auth import KeyRing
from service.auth_limits import FailedAuthLimit
from service.metrics import Metrics
from service.settings import Settings
from service.store import AggregateStore, EventStore, ExperimentStore, RedisClient

if TYPE_CHECKING:
    from service.assignment import Assigner
    from service.ingestion import Targets
    from service.journal import Journal
    from service.monitor import WebhookSender

__all__ = ["Component", "Periodic", "Runtime"]


class Component(Protocol):
    """A background part started and stopped with the app (buffers, workers, watchers)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    keyring: KeyRing
    redis: RedisClient
    experiments: ExperimentStore
    components: list[Component] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    assigner: Assigner | None = None
    events: EventStore | None = None
    aggregates: AggregateStore | None = None
    event_targets: Targets | None = None
    metrics: Metrics = field(default_factory=Metrics)
    journal: Journal | None = None
    webhooks: WebhookSender | None = None
    auth_limit: FailedAuthLimit | None = None  # the API's; the dashboard login counts there too


class Periodic:
    """A component that runs ``run_once`` every ``interval_s`` (start to start) until stopped.

    ``stop`` lets a pass in progress finish for up to ``grace_s`` (a rollback under way gets
    its journal entry), then cancels it. A stop flag ends the loop, not only cancellation:
    a cancellation landing inside a Redis call can be absorbed by the client library.
    """

    def __init__(
        self,
        what: str,
        run_once: Callable[[], Awaitable[object]],
        *,
        interval_s: float,
        grace_s: float,
        log: logging.Logger,
    ) -> None:
        self._what = what
        self._run_once = run_once
        self.interval_s = interval_s
        self._grace_s = grace_s
        self._log = log
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name=f"sharpen-{self._what}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self._grace_s)
        except TimeoutError:
            self._log.warning("%s pass still running at shutdown: cancelled", self._what)
            self._task.cancel()
        except Exception:
            self._log.exception("%s loop failed", self._what)
        self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await self._run_once()
            except Exception:
                self._log.exception("%s pass failed", self._what)
            remaining = max(0.0, self.interval_s - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), remaining)
