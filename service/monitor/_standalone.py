"""Monitoring in a process without the API: what ``sharpen worker`` runs next to the
aggregator (the guardrail monitor, the journal catch-up, the webhook sender)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import start_http_server

from service.auth import KeyRing
from service.metrics import Metrics
from service.monitor._components import add_monitoring
from service.runtime import Runtime
from service.settings import Settings
from service.store import ExperimentStore, RedisSettings, close, connect

__all__ = ["monitoring"]

log = logging.getLogger("sharpen.monitor")


@asynccontextmanager
async def monitoring(settings: Settings) -> AsyncIterator[Runtime]:
    """Connect, start the monitoring components, and stop them on exit.

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
        if server is not None:
            server.shutdown()
        await close(redis)
