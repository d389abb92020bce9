"""``sharpen worker``: the aggregator as its own process (run several to share the load)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer
from rich.console import Console

from service.cli._http import fail
from service.cli.serve import load_settings
from service.logs import configure_logging, settings_secrets

if TYPE_CHECKING:
    from service.settings import Settings
    from service.worker import Aggregator

__all__ = ["worker"]

console = Console(stderr=True)


async def _run(aggregator: Aggregator, settings: Settings) -> None:
    from service.components import monitoring  # guardrail monitor, journal, webhooks

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await aggregator.start()
    try:
        async with monitoring(settings):
            await stop.wait()
    finally:
        await aggregator.stop()


def worker(
    redis_url: str = typer.Option(None, help="[SHARPEN_REDIS_URL] (required)"),
    name: str = typer.Option(None, help="Consumer name (default: host-pid-random)"),
    log_level: str = typer.Option(None, help="debug, info, warning, error [SHARPEN_LOG_LEVEL]"),
    log_format: str = typer.Option(None, help="text or json [SHARPEN_LOG_FORMAT]"),
) -> None:
    """Aggregate events and exposures of every running experiment into statistics.

    Any number of workers may run against the same Redis: they share each stream's
    consumer group, and a crashed worker's pending entries are taken over by the others.
    """
    from service.worker import Aggregator

    # The worker serves no HTTP: API keys are irrelevant, so do not require them.
    settings = load_settings(
        redis_url=redis_url,
        dev=True,
        log_level=log_level.lower() if log_level else None,
        log_format=log_format.lower() if log_format else None,
    )
    configure_logging(
        settings.log_format,
        settings.log_level,
        secrets=settings_secrets(
            settings.admin_keys, settings.client_keys, settings.webhook_secret, settings.redis_url
        ),
    )
    if settings.redis_url is None:
        fail("sharpen worker needs SHARPEN_REDIS_URL (or --redis-url): the Redis to aggregate")
    aggregator = Aggregator(settings, consumer=name)
    where = urlsplit(settings.redis_url)
    console.print(f"sharpen worker {aggregator.consumer} on {where.hostname}:{where.port}")
    asyncio.run(_run(aggregator, settings))
