"""Config change notifications: the version counter and the pub/sub channel.

:class:`~service.store.experiments.ExperimentStore` INCRs ``keys.config_version()``
and PUBLISHes ``"{version}:{key}"`` on ``keys.config_channel()`` after every
lifecycle change; this module is how other processes hear about it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from service.store import keys
from service.store.connection import RedisClient

__all__ = ["ConfigFeed"]

_LISTEN_TIMEOUT_S = 1.0


class ConfigFeed:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def version(self) -> int:
        """The current config version (0 before the first lifecycle change)."""
        return int(await self._redis.get(keys.config_version()) or 0)

    async def state(self) -> tuple[int, int]:
        """``(config version, number of experiments)``: creating a draft bumps no version,
        but it changes the count."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.config_version())
            pipe.scard(keys.experiments_index())
            version, count = await pipe.execute()
        return int(version or 0), int(count or 0)

    async def listen(
        self,
        on_change: Callable[[str], None],
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        """Call ``on_change(message)`` for every change published, until cancelled.

        Raises on connection loss; the caller resubscribes (and should re-read the
        version, since messages published meanwhile are gone).
        """
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.config_channel())
            if on_subscribed is not None:
                on_subscribed()
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_LISTEN_TIMEOUT_S
                )
                if message is not None and message.get("type") == "message":
                    on_change(str(message.get("data", "")))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
