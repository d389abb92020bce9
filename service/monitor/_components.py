"""Wire monitoring into a runtime: journal, webhook sender and, in a worker, the monitor."""

from __future__ import annotations

from service.journal import Journal
from service.modelwatch import ModelWatch
from service.monitor._loop import Monitor
from service.monitor._sampler import ProcessSampler
from service.monitor._webhooks import WebhookSender
from service.runtime import Runtime

__all__ = ["add_monitoring"]


def add_monitoring(runtime: Runtime) -> None:
    """Component factory. The API needs the journal and the webhook sender (lifecycle
    routes journal and notify); the monitor loop runs where ``settings.run_worker`` is on
    (``sharpen serve`` by default, and ``sharpen worker``), with the model monitor."""
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
