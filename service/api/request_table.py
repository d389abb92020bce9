"""Request counts and latencies per route template, method and status: a per-worker table.

Recording a request (:meth:`RequestTable.record`) adds to plain Python numbers, no lock and
no prometheus-client call: that is what the assignment hot path can afford. The table is
merged into the ``sharpen_http_requests_total`` counter and the
``sharpen_http_request_duration_seconds`` histogram when they are read (every scrape and
:meth:`service.metrics.Metrics.sample` flush it first) and, at the latest,
:data:`FLUSH_AFTER_S` after a request was recorded, so that in multiprocess mode another
worker's scrape sees it too.

The route label is the matched route's path template (``/v1/experiments/{key}``), never
the raw path, so label values stay bounded; paths no route knows count as ``unmatched``.
Requests answered before routing (the assignment fast path, a 413, a refused key) are
matched against the app's routes afterwards.
"""

from __future__ import annotations

import asyncio
import re
from bisect import bisect_left
from typing import Any, Final

from starlette.routing import compile_path
from starlette.types import Scope

from service.metrics import LATENCY_BUCKETS, Metrics

__all__ = ["FLUSH_AFTER_S", "UNMATCHED", "RequestTable"]

UNMATCHED: Final = "unmatched"
FLUSH_AFTER_S: Final = 1.0
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATIC_CACHE_MAX = 1024
_BOUNDS: Final = (*LATENCY_BUCKETS, float("inf"))


class RequestTable:
    """One worker's request counts since the last flush, keyed by (route, method, status)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # Per label set: [count, sum of seconds, requests per latency bucket...].
        self._pending: dict[tuple[str, str, int], list[float]] = {}
        self._static: dict[str, str] = {}
        self._templates: list[tuple[re.Pattern[str], str]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        metrics.before_collect(self.flush)

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "OTHER"
        key = (route, method, status)
        row = self._pending.get(key)
        if row is None:
            if self._timer is None:
                self._flush_later()
            row = self._pending[key] = [0.0] * (2 + len(_BOUNDS))
        row[0] += 1
        row[1] += seconds
        row[2 + bisect_left(_BOUNDS, seconds)] += 1

    def flush(self) -> None:
        """Add what was recorded since the last flush to the Prometheus metrics."""
        pending, self._pending = self._pending, {}
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        requests = self.metrics.http_requests
        durations = self.metrics.http_request_duration
        for (route, method, status), row in pending.items():
            labels = (route, method, str(status))
            requests.labels(*labels).inc(row[0])
            child = durations.labels(*labels)
            # Histogram has no bulk observe: add to its sum and per-bucket values directly
            # (non-cumulative, as observe() keeps them; pinned by tests/monitor/test_metrics).
            child._sum.inc(row[1])
            for index, n in enumerate(row[2:]):
                if n:
                    child._buckets[index].inc(n)

    def _flush_later(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving (a direct call): the next read flushes
        self._timer = loop.call_later(FLUSH_AFTER_S, self._timed_flush)

    def _timed_flush(self) -> None:
        self._timer = None
        self.flush()

    def route(self, scope: Scope) -> str:
        """The route template of a request (``scope["route"]`` when the router matched)."""
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
