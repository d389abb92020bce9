"""What one running app holds: settings, the Redis client, the stores and background parts.

Built by :func:`service.app.create_app`'s lifespan and kept on ``app.state.runtime``;
nothing here is a module-level singleton.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from service.auth import KeyRing
from service.auth_limits import FailedAuthLimit
from service.metrics import Metrics
from service.settings import Settings
from service.store import AggregateStore, EventStore, ExperimentStore, RedisClient

if TYPE_CHECKING:
    from service.assignment import Assigner
    from service.journal import Journal
    from service.monitor import WebhookSender

__all__ = ["Component", "Runtime"]


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
    metrics: Metrics = field(default_factory=Metrics)
    journal: Journal | None = None
    webhooks: WebhookSender | None = None
    auth_limit: FailedAuthLimit | None = None  # the API's; the dashboard login counts there too
