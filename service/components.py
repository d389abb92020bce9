"""The background parts of a process, wired in one place: what each feature adds to a
runtime (the component factories), and how a runtime's components start and stop.

``create_app`` wires every factory (:func:`wire`); ``sharpen worker`` runs the
monitoring ones without the API (:func:`monitoring`). Components start in the order they
were added and stop in reverse, so a buffer added after the cache it reads is flushed
before the cache stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from prometheus_client import start_http_server

from service.assignment import Assigner, ConfigCache, ConfigStreams, ExposureBuffer
from service.auth import KeyRing
from service.bodies import prepare
from service.ingestion import Targets
from service.journal import Journal
from service.metrics import Metrics
from service.modelwatch import ModelWatch
from service.monitor import Monitor, ProcessSampler, WebhookSender
from service.runtime import Runtime
from service.settings import Settings
from service.store import (
    AggregateStore,
    EventStore,
    ExperimentStore,
    RedisSettings,
    close,
    connect,
)
from service.store.config_feed import ConfigFeed
from service.store.exposures import ExposureLog
from service.worker import Aggregator

__all__ = [
    "ComponentFactory",
    "add_aggregator",
    "add_assignment",
    "add_ingestion",
    "add_monitoring",
    "monitoring",
    "running",
    "wire",
]

log = logging.getLogger("sharpen")

ComponentFactory = Callable[[Runtime], None]
"""Adds background components (and what routes need) to a runtime before they start."""


def add_assignment(runtime: Runtime) -> None:
    """Builds ``runtime.assigner`` and the config streams: the config cache, then the
    exposure buffer (so on shutdown the buffer is flushed after the streams end)."""
    settings = runtime.settings
    cache = ConfigCache(
        runtime.experiments,
        ConfigFeed(runtime.redis),
        poll_interval_s=settings.config_poll_interval_s,
    )
    buffer = ExposureBuffer(
        ExposureLog(runtime.redis),
        flush_interval_s=settings.exposure_flush_interval_s,
        max_pending=settings.exposure_buffer_max,
        on_written=runtime.metrics.count_assignments,
    )
    runtime.assigner = Assigner(cache, buffer)
    streams = ConfigStreams(
        cache,
        max_connections=settings.config_stream_max,
        max_per_key=settings.config_stream_max_per_key,
        heartbeat_s=settings.config_stream_heartbeat_s,
    )
    runtime.extras["config_streams"] = streams
    # Stopped first: the streams end before the cache and the buffer stop.
    runtime.components.extend([cache, buffer, streams])


def add_ingestion(runtime: Runtime) -> None:
    """The stores behind ``/v1/events`` and the statistics read API, and the targets cache."""
    settings = runtime.settings
    runtime.events = EventStore(
        runtime.redis,
        dedup_window_s=settings.event_dedup_window_s,
        max_backlog=settings.ingest_max_backlog,
        idempotency_window_s=settings.idempotency_window_s,
    )
    runtime.aggregates = AggregateStore(runtime.redis)
    runtime.event_targets = Targets()
    prepare(settings.events_max_batch, settings.records_max_batch)  # records and labels too


def add_aggregator(runtime: Runtime) -> None:
    """The aggregator inside the app when ``settings.run_worker``."""
    if runtime.settings.run_worker:
        runtime.components.append(Aggregator(runtime.settings))


def add_monitoring(runtime: Runtime) -> None:
    """The API needs the journal and the webhook sender (lifecycle routes journal and
    notify); the monitor loop runs where ``settings.run_worker`` is on (``sharpen serve``
    by default, and ``sharpen worker``), with the model monitor."""
    settings = runtime.settings
    if runtime.journal is None:
        runtime.journal = Journal(runtime.redis)
    if runtime.webhooks is None:
        runtime.webhooks = WebhookSender(
            secret=settings.webhook_secret,
            urls=settings.webhook_urls,
            metrics=runtime.metrics,
            timeout_s=settings.webhook_timeout_s,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff_s,
            queue_max=settings.webhook_queue_max,
            allow_private=settings.webhook_allow_private,
        )
        runtime.components.append(runtime.webhooks)
    if runtime.assigner is not None:
        runtime.components.append(ProcessSampler(runtime))
    if settings.run_worker:
        runtime.components.append(Monitor(runtime))
        runtime.components.append(ModelWatch(runtime))


_APP_FACTORIES: tuple[ComponentFactory, ...] = (
    add_assignment,
    add_ingestion,
    add_aggregator,
    add_monitoring,
)


def wire(runtime: Runtime) -> None:
    """Add every feature's components (what ``create_app``'s lifespan runs)."""
    for factory in _APP_FACTORIES:
        factory(runtime)


@asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Runtime]:
    """Start the runtime's components in order; on exit stop the started ones in reverse
    (a failing stop is logged, the others still stop)."""
    started = []
    try:
        for component in runtime.components:
            await component.start()
            started.append(component)
        yield runtime
    finally:
        for component in reversed(started):
            try:
                await component.stop()
            except Exception:
                log.exception("stopping %r failed", component)


@asynccontextmanager
async def monitoring(settings: Settings) -> AsyncIterator[Runtime]:
    """What ``sharpen worker`` runs beside its aggregator: the guardrail monitor, the
    journal catch-up, the webhook sender and the model monitor, without the API.

    With ``SHARPEN_WORKER_METRICS_PORT`` the process serves its own counters (monitor
    passes, errors, actions, webhooks) on that port; experiment series are served by the
    API processes' ``GET /metrics``.
    """
    if settings.redis_url is None:
        raise ValueError("monitoring needs settings.redis_url")
    redis = await connect(RedisSettings(url=settings.redis_url, cluster=settings.redis_cluster))
    runtime = Runtime(
        settings=settings.model_copy(update={"run_worker": True}),
        keyring=KeyRing(),
        redis=redis,
        experiments=ExperimentStore(redis),
        metrics=Metrics(experiments=False),
    )
    add_monitoring(runtime)
    server = None
    if settings.worker_metrics_port is not None:
        server, _ = start_http_server(
            settings.worker_metrics_port, settings.host, registry=runtime.metrics.registry
        )
        log.info("worker metrics on http://%s:%d/", settings.host, settings.worker_metrics_port)
    try:
        async with running(runtime):
            yield runtime
    finally:
        if server is not None:
            server.shutdown()
        await close(redis)
