"""Signed webhooks, sent from a bounded queue by a background task with retries.

Body: ``{"id", "event", "experiment", "timestamp", "data"}`` as JSON. Headers:
``X-Sharpen-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`` keyed by
``SHARPEN_WEBHOOK_SECRET``, ``X-Sharpen-Timestamp`` (the body's ``timestamp``, whole
seconds; the body is signed, so a receiver can refuse old deliveries), ``X-Sharpen-Event``
and ``X-Sharpen-Delivery`` (the id, the same on every retry: receivers deduplicate on it).

Connection errors, 408, 425, 429 and 5xx are retried by the SDK's
:class:`sharpen.RetryPolicy` — one policy for SDK uploads and webhooks: exponential backoff
with jitter, or ``Retry-After`` (seconds or an HTTP date) as the floor, capped at 60 s;
other answers are final. Every attempt first checks the target (:mod:`service.webhook_targets`):
unless ``SHARPEN_WEBHOOK_ALLOW_PRIVATE=true`` the host is resolved, every address must be
public, and the request goes to the address just checked (``Host`` and the TLS name stay the
URL's), so DNS rebinding cannot turn a webhook towards the service's own network. A refused
target is final; a name that does not resolve is retried. Redirects are not followed, and
proxy environment variables are ignored (the connection is the one checked). ``send``
never waits: when the queue is full the webhook is dropped, logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from service import __version__
from service.metrics import Metrics
from service.webhook_targets import Resolver, Target, TargetRefused, resolve_target, system_resolver
from sharpen import RetryPolicy

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Webhook", "WebhookSender", "sign", "verify"]

log = logging.getLogger("sharpen.webhooks")

SIGNATURE_HEADER = "X-Sharpen-Signature"
TIMESTAMP_HEADER = "X-Sharpen-Timestamp"
_BACKOFF_CAP_S = 60.0


def sign(secret: str, body: bytes) -> str:
    """The signature header value of ``body``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True, slots=True)
class Webhook:
    """One delivery: an event for one URL."""

    url: str
    event: str
    experiment: str
    body: bytes
    delivery_id: str
    timestamp: int


def _pinned(target: Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(url, extra headers, request extensions)`` sending to ``target``'s first checked
    address while keeping its host name for ``Host`` and TLS (SNI and certificate)."""
    if not target.addresses:
        return target.url, {}, {}
    url = httpx.URL(target.url)
    pinned = url.copy_with(host=target.addresses[0])
    extensions = {"sni_hostname": target.host} if url.scheme == "https" else {}
    return str(pinned), {"Host": url.netloc.decode("ascii")}, extensions


class WebhookSender:
    """A component: ``start()`` runs the delivery task, ``stop()`` drains briefly then ends."""

    def __init__(
        self,
        *,
        secret: str | None,
        urls: Iterable[str] = (),
        metrics: Metrics,
        timeout_s: float = 5.0,
        max_attempts: int = 6,
        backoff_s: float = 0.5,
        queue_max: int = 1000,
        concurrency: int = 8,
        allow_private: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._secret = secret
        self._urls = list(dict.fromkeys(urls))
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._policy = RetryPolicy(
            max_attempts=max_attempts,
            base_delay=backoff_s,
            max_delay=_BACKOFF_CAP_S,
            max_retry_after=_BACKOFF_CAP_S,
        )
        self._allow_private = allow_private
        self._resolver = resolver
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[Webhook] = asyncio.Queue(maxsize=queue_max)
        self._slots = asyncio.Semaphore(concurrency)
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._warned_unsigned = False

    def send(
        self,
        event: str,
        experiment: str,
        data: Mapping[str, Any],
        urls: Iterable[str] = (),
    ) -> int:
        """Queue ``event`` for the global URLs plus ``urls``; returns how many were queued."""
        targets = list(dict.fromkeys([*self._urls, *urls]))
        if not targets:
            return 0
        if self._secret is None:
            if not self._warned_unsigned:
                log.error("webhooks not sent: no SHARPEN_WEBHOOK_SECRET (bodies are signed)")
                self._warned_unsigned = True
            self._metrics.webhook_deliveries.labels("dropped").inc(len(targets))
            return 0
        delivery = uuid.uuid4().hex
        timestamp = int(self._clock())
        body = orjson.dumps(
            {
                "id": delivery,
                "event": event,
                "experiment": experiment,
                "timestamp": timestamp,
                "data": data,
            },
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        )
        queued = 0
        for url in targets:
            try:
                self._queue.put_nowait(Webhook(url, event, experiment, body, delivery, timestamp))
                queued += 1
            except asyncio.QueueFull:
                log.error("webhook queue full: dropped %s for %s to %s", event, experiment, url)
                self._metrics.webhook_deliveries.labels("dropped").inc()
        self._metrics.webhook_queue_size.set(self._queue.qsize())
        return queued

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=self._timeout_s,
            headers={"User-Agent": f"sharpen/{__version__}"},
            follow_redirects=False,
            trust_env=False,
        )
        self._task = asyncio.create_task(self._run(), name="sharpen-webhooks")

    async def drain(self) -> None:
        """Wait until every queued webhook is delivered or given up (tests, shutdown)."""
        await self._queue.join()

    async def stop(self, grace_s: float = 2.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), grace_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        left = self._queue.qsize()
        if left:
            log.warning("webhooks: %d not sent at shutdown", left)

    async def _run(self) -> None:
        while True:
            hook = await self._queue.get()
            self._metrics.webhook_queue_size.set(self._queue.qsize())
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver_then_release(hook))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _deliver_then_release(self, hook: Webhook) -> None:
        try:
            await self._deliver(hook)
        except Exception:
            log.exception("webhook %s to %s failed unexpectedly", hook.event, hook.url)
            self._metrics.webhook_deliveries.labels("failed").inc()
        finally:
            self._slots.release()
            self._queue.task_done()

    async def _deliver(self, hook: Webhook) -> None:
        assert self._client is not None and self._secret is not None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, hook.body),
            TIMESTAMP_HEADER: str(hook.timestamp),
            "X-Sharpen-Event": hook.event,
            "X-Sharpen-Delivery": hook.delivery_id,
        }
        policy = self._policy
        for attempt in range(1, policy.max_attempts + 1):
            retry_after: float | None = None
            try:
                target = await resolve_target(
                    hook.url, allow_private=self._allow_private, resolver=self._resolver
                )
                url, pinned, extensions = _pinned(target)
                response = await self._client.post(
                    url, content=hook.body, headers={**headers, **pinned}, extensions=extensions
                )
            except TargetRefused as exc:
                log.error("webhook %s to %s refused: %s", hook.event, hook.url, exc)
                self._metrics.webhook_deliveries.labels("failed").inc()
                return
            except (httpx.HTTPError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                outcome = policy.classify(response.status_code)
                if outcome == "sent":
                    self._metrics.webhook_deliveries.labels("delivered").inc()
                    return
                problem = f"HTTP {response.status_code}"
                if outcome == "rejected":
                    log.error("webhook %s to %s refused: %s", hook.event, hook.url, problem)
                    self._metrics.webhook_deliveries.labels("failed").inc()
                    return
                retry_after = policy.parse_retry_after(response.headers.get("retry-after"))
            if attempt == policy.max_attempts:
                break
            delay = policy.delay(attempt, retry_after, self._rng)
            log.warning(
                "webhook %s to %s: %s; retry %d in %.2fs",
                hook.event,
                hook.url,
                problem,
                attempt,
                delay,
            )
            self._metrics.webhook_deliveries.labels("retried").inc()
            await self._sleep(delay)
        log.error("webhook %s to %s given up after %d attempts", hook.event, hook.url, attempt)
        self._metrics.webhook_deliveries.labels("failed").inc()
