"""Shared pieces of the monitor tests: specs, results documents, runtimes on a real Redis."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from service.auth import KeyRing
from service.journal import Journal
from service.metrics import Metrics
from service.monitor import WebhookSender
from service.runtime import Runtime
from service.spec import ExperimentSpec
from service.store import ExperimentStore, RedisSettings, close, connect
from tests._factories import guarded_spec
from tests.conftest import make_settings

WEBHOOK_SECRET = "test-webhook-secret-0001"


def guardrail_row(
    status: str,
    segment: dict[str, str] | None = None,
    estimate: float = -0.04,
    ci: tuple[float, float] = (-0.07, -0.01),
    metric: str = "recall",
    units: int = 1000,
) -> dict[str, Any]:
    return {
        "metric": metric,
        "variant": "candidate",
        "segment": segment,
        "relative": {"estimate": estimate, "ci": list(ci)},
        "units": {"baseline": units, "treatment": units},
        "status": status,
    }


def primary_row(
    estimate: float, ci: tuple[float, float], absolute: float, abs_ci: tuple[float, float]
) -> dict[str, Any]:
    return {
        "metric": "precision",
        "role": "primary",
        "variant": "candidate",
        "segment": None,
        "baseline": {"units": 1000, "mean": 0.6},
        "treatment": {"units": 1000, "mean": 0.6 + absolute},
        "absolute": {"estimate": absolute, "ci": list(abs_ci)},
        "relative": {"estimate": estimate, "ci": list(ci)},
        "p_value": 0.01,
        "status": "better",
    }


def results_doc(
    key: str = "fraud-v7",
    guardrails: list[dict[str, Any]] | None = None,
    *,
    srm_ok: bool = True,
    units: tuple[int, int] = (1000, 1000),
    primary: dict[str, Any] | None = None,
    decision: str = "continue",
) -> dict[str, Any]:
    """A results document of the shape docs/results.md describes."""
    return {
        "experiment": key,
        "status": "running",
        "version": 1,
        "units": {"baseline": units[0], "candidate": units[1]},
        "srm": {"p_value": 0.4 if srm_ok else 1e-6, "ok": srm_ok},
        "metrics": [primary] if primary else [],
        "guardrails": guardrails if guardrails is not None else [guardrail_row("ok")],
        "decision": {"action": decision, "reasons": [f"engine says {decision}"]},
    }


class Results:
    """An injectable ``results`` function returning whatever document is set, per key."""

    def __init__(self, doc: dict[str, Any] | Callable[[str], dict[str, Any]]) -> None:
        self.doc = doc
        self.calls: list[str] = []

    async def __call__(self, runtime: Runtime, key: str) -> dict[str, Any]:
        self.calls.append(key)
        doc = self.doc(key) if callable(self.doc) else self.doc
        return {**doc, "experiment": key}


class Receiver:
    """Webhook deliveries, answered by a MockTransport (optionally failing first)."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_first = fail_first
        self.status = status

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) <= self.fail_first:
            return httpx.Response(self.status)
        return httpx.Response(204)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def events(self) -> list[str]:
        return [r.headers["X-Sharpen-Event"] for r in self.requests]


async def _no_sleep(_: float) -> None:
    return None


@asynccontextmanager
async def runtime_on(
    redis_url: str,
    receiver: Receiver | None = None,
    webhook_urls: tuple[str, ...] = ("http://hooks.test/sharpen",),
    clock: Callable[[], float] | None = None,
    **overrides: Any,
) -> AsyncIterator[Runtime]:
    """A runtime with a journal; webhooks go to an httpx MockTransport, storage to redis-server."""
    settings = make_settings(
        redis_url,
        webhook_urls=list(webhook_urls),
        webhook_secret=WEBHOOK_SECRET,
        **overrides,
    )
    redis = await connect(RedisSettings(url=redis_url))
    metrics = Metrics()
    runtime = Runtime(
        settings=settings,
        keyring=KeyRing.from_config(settings.admin_keys, settings.client_keys),
        redis=redis,
        experiments=ExperimentStore(redis),
        metrics=metrics,
    )
    runtime.journal = Journal(redis) if clock is None else Journal(redis, clock=clock)
    runtime.webhooks = WebhookSender(
        secret=settings.webhook_secret,
        urls=settings.webhook_urls,
        metrics=metrics,
        transport=(receiver or Receiver()).transport(),
        allow_private=True,  # hooks.test is answered by the mock transport
        sleep=_no_sleep,
    )
    await runtime.webhooks.start()
    try:
        yield runtime
    finally:
        await runtime.webhooks.stop()
        await close(redis)


async def start_experiment(runtime: Runtime, **changes: Any) -> str:
    spec = ExperimentSpec.model_validate(guarded_spec(**changes))
    await runtime.experiments.create(spec, actor="tester")
    await runtime.experiments.transition(spec.key, "start", "tester")
    return spec.key


class HookHandler(BaseHTTPRequestHandler):
    """Keeps each delivery's headers and body; answers the queued statuses, then 200."""

    received: list[tuple[dict[str, str], bytes]]
    answers: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers.items()), body))
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def loopback_receiver(answers: Sequence[int] = ()) -> Iterator[tuple[int, type[HookHandler]]]:
    """A real webhook receiver on 127.0.0.1: ``(port, handler class holding .received)``."""
    handler = type("Hook", (HookHandler,), {"received": [], "answers": list(answers)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
