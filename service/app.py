"""The application factory: ``create_app(settings)`` builds an app with its own lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from service import __version__
from service.api import routers
from service.api._docs import install_docs
from service.api.errors import install_error_handlers
from service.api.front import Front
from service.api.limits import BodySizeLimit
from service.api.ratelimit import AdminRateLimit
from service.api.request_table import RequestTable
from service.auth import Authenticate, KeyRing
from service.auth_limits import FailedAuthLimit
from service.components import running, wire
from service.logs import configure_logging, settings_secrets
from service.metrics import Metrics
from service.runtime import Runtime
from service.settings import Settings
from service.store import ExperimentStore, RedisSettings, close, connect
from service.ui import router as ui_router

__all__ = ["SharpenApp", "create_app"]

log = logging.getLogger("sharpen")

_LARGE_BODY_PREFIXES = ("/v1/events", "/v1/models/", "/v1/backtest", "/v1/analyze")


class SharpenApp(FastAPI):
    """FastAPI behind one plain ASGI step, :class:`service.api.front.Front`, that every HTTP
    request takes first (request id, caller, metrics; ``POST /v1/assign`` answered there)."""

    front: Front | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front is not None:
            scope["app"] = self
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings, keyring: KeyRing | None = None) -> SharpenApp:
    """Build the service for ``settings``. ``settings.redis_url`` must be set by now."""
    if settings.redis_url is None:
        raise ValueError("create_app needs settings.redis_url (sharpen serve starts one)")
    ring = keyring or KeyRing.from_config(settings.admin_keys, settings.client_keys)
    redis_settings = RedisSettings(url=settings.redis_url, cluster=settings.redis_cluster)
    metrics = Metrics()  # per app: tests build several apps in one process
    auth_limit = FailedAuthLimit(
        burst=settings.auth_fail_burst,
        per_min=settings.auth_fail_per_min,
        global_burst=settings.auth_fail_global_burst,
        global_per_min=settings.auth_fail_global_per_min,
        max_addresses=settings.auth_fail_max_addresses,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = await connect(redis_settings)
        runtime = Runtime(
            settings=settings,
            keyring=ring,
            redis=redis,
            experiments=ExperimentStore(redis),
            metrics=metrics,
            auth_limit=auth_limit,
        )
        app.state.runtime = runtime
        wire(runtime)
        front = app.front if isinstance(app, SharpenApp) else None
        if front is not None:
            front.assigner = runtime.assigner  # the hot path answers from now on
        try:
            async with running(runtime):
                yield
        finally:
            if front is not None:
                front.assigner = None
                front.table.flush()  # the last requests' counts, before the process goes
            await close(redis)

    app = SharpenApp(
        title="sharpen",
        version=__version__,
        summary="Online experimentation for refining production ML models",
        lifespan=lifespan,
        docs_url=None,  # served from the package below, not from a CDN
        redoc_url=None,
        # FastAPI's built-in telemetry hooks cost ~7 us a request on the assign hot path.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    install_docs(app)
    # Innermost: only admin-scoped keys are throttled, per key name (service/api/ratelimit.py).
    app.add_middleware(
        AdminRateLimit,
        rate_per_s=settings.admin_rate_limit_per_s,
        burst=settings.admin_rate_limit_burst,
    )
    app.add_middleware(
        BodySizeLimit,
        default=settings.max_body_bytes,
        large=settings.max_events_body_bytes,
        large_prefixes=_LARGE_BODY_PREFIXES,
        overrides=(("/v1/models/", "/reference", settings.model_reference_max_bytes),),
    )
    # Outside every route and middleware: request id, caller, request metrics, and the
    # assignment hot path (service/api/front.py).
    app.front = Front(
        super(SharpenApp, app).__call__,
        authenticate=Authenticate(keyring=ring, limit=auth_limit),
        table=RequestTable(metrics),
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.access_log,
    )
    for router in routers():
        app.include_router(router)
    app.include_router(ui_router())  # the dashboard, under /ui
    return app


def app_from_env() -> SharpenApp:
    """Factory for ``uvicorn --factory service.app:app_from_env`` (settings from SHARPEN_*)."""
    settings = Settings()
    configure_logging(
        settings.log_format,
        settings.log_level,
        secrets=settings_secrets(
            settings.admin_keys, settings.client_keys, settings.webhook_secret, settings.redis_url
        ),
    )
    return create_app(settings)
