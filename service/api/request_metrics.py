"""A pure ASGI middleware counting requests and timing them per route template and status.

The route label is the matched route's path template (``/v1/experiments/{key}``), never
the raw path, so label values stay bounded; paths no route knows count as ``unmatched``.
Requests answered before routing (the assignment fast path, a 413 for a large body) are
matched against the app's routes afterwards.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client.metrics import Counter, Histogram
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics

__all__ = ["UNMATCHED", "RequestMetrics"]

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATIC_CACHE_MAX = 1024


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._static: dict[str, str] = {}
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            counter, histogram = self._child(self._route(scope), method, status)
            counter.inc()
            histogram.observe(time.perf_counter() - start)

    def _child(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        labels = (route, method, str(status))
        child = self._children.get(labels)
        if child is None:
            child = (
                self.metrics.http_requests.labels(*labels),
                self.metrics.http_request_duration.labels(*labels),
            )
            self._children[labels] = child
        return child

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", UNMATCHED))
        path = scope["path"]
        cached = self._static.get(path)
        if cached is not None:
            return cached
        if self._templates is None:
            self._templates = _templates(scope.get("app"))
        for regex, template in self._templates:
            if regex.match(path):
                if template == path and len(self._static) < _STATIC_CACHE_MAX:
                    self._static[path] = template
                return template
        return UNMATCHED


def _templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """Path templates of the app's documented routes, static ones first (from OpenAPI, the
    public view of every route however routers are nested)."""
    try:
        paths = list(app.openapi().get("paths", {}))
    except Exception:
        return []
    paths.sort(key=lambda t: (t.count("{"), t))
    return [(compile_path(t)[0], t) for t in paths]
