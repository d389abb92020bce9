"""The in-process config cache: what ``/v1/assign`` and ``/v1/config`` read, never Redis
(a :class:`ConfigSource`; :class:`StaticConfig` is the fixed one, for tests and tools).

It reloads when the config version changes, told by pub/sub within milliseconds
and, as a safety net for lost messages or a broken subscription, by polling the
version every ``poll_interval_s``. Each version is compiled once. The poll also
watches the number of experiments, since creating a draft bumps no version (a
draft answers "baseline, not_running"; edits of a draft's payloads show at the
next change).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from service.assignment._compile import CompiledConfig, compile_config
from service.store import ExperimentStore
from service.store.config_feed import ConfigFeed
from service.store.connection import RedisError

__all__ = ["ConfigCache", "ConfigSource", "StaticConfig"]

log = logging.getLogger("sharpen.assignment")

_SUBSCRIBE_WAIT_S = 2.0
_MAX_BACKOFF_S = 5.0
_STOP_WAIT_S = 2.0


class ConfigSource(Protocol):
    @property
    def current(self) -> CompiledConfig | None: ...

    async def refresh(self, *, force: bool = False) -> bool: ...


class StaticConfig:
    """A :class:`ConfigSource` that always holds the same compiled config."""

    def __init__(self, config: CompiledConfig) -> None:
        self._config = config

    @property
    def current(self) -> CompiledConfig:
        return self._config

    async def refresh(self, *, force: bool = False) -> bool:
        return False


class ConfigCache:
    """A component (``start``/``stop``) holding the latest :class:`CompiledConfig`."""

    def __init__(
        self,
        experiments: ExperimentStore,
        feed: ConfigFeed,
        *,
        poll_interval_s: float,
        subscribe: bool = True,
    ) -> None:
        self._experiments = experiments
        self._feed = feed
        self._poll_interval_s = poll_interval_s
        self._subscribe = subscribe
        self._current: CompiledConfig | None = None
        self._state: tuple[int, int] = (-1, -1)
        self._wake = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._listen_delay = 0.1
        self._on_reload: list[Callable[[CompiledConfig], None]] = []
        self.reloads = 0
        self.loaded_at: float | None = None

    @property
    def current(self) -> CompiledConfig | None:
        """The latest compiled config; ``None`` until the first load succeeds."""
        return self._current

    async def start(self) -> None:
        if self._subscribe:
            self._tasks.append(asyncio.create_task(self._listen(), name="config-pubsub"))
            # Subscribe before the first load, so no change can fall between the two.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), _SUBSCRIBE_WAIT_S)
        try:
            await self.refresh()
        except (RedisError, OSError) as exc:
            log.warning("config not loaded at start (will retry): %s", exc)
        self._tasks.append(asyncio.create_task(self._poll(), name="config-poll"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a cancelled read on a broken connection must not hold up shutdown.
            await asyncio.wait(tasks, timeout=_STOP_WAIT_S)

    def on_reload(self, callback: Callable[[CompiledConfig], None]) -> None:
        """Call ``callback(config)`` after every reload (it must not block)."""
        self._on_reload.append(callback)

    def changed(self) -> None:
        """Ask for a reload check now (cheap: a version read unless it moved)."""
        self._wake.set()

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload if the stored version differs from ours; ``True`` when it did."""
        async with self._lock:
            state = await self._feed.state()
            if not force and self._current is not None and self._state == state:
                return False
            records = await self._experiments.list()
            self._current = compile_config(records, state[0])
            self._state = state
            self.reloads += 1
            self.loaded_at = time.time()
            for callback in self._on_reload:
                callback(self._current)
            return True

    async def _poll(self) -> None:
        backoff = self._poll_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            self._wake.clear()
            try:
                await self.refresh()
                backoff = self._poll_interval_s
            except (RedisError, OSError) as exc:
                log.warning("config refresh failed: %s", exc)
                backoff = min(max(backoff * 2, self._poll_interval_s), _MAX_BACKOFF_S)
            except Exception:
                log.exception("config refresh failed")
                backoff = _MAX_BACKOFF_S

    def _on_message(self, _message: str) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        while True:
            try:
                await self._feed.listen(self._on_message, self._on_subscribed)
            except (RedisError, OSError) as exc:
                log.warning("config subscription lost (polling meanwhile): %s", exc)
            except Exception:
                log.exception("config subscription failed")
            await asyncio.sleep(self._listen_delay)
            self._listen_delay = min(self._listen_delay * 2, _MAX_BACKOFF_S)

    def _on_subscribed(self) -> None:
        self._subscribed.set()
        self._listen_delay = 0.1
        # Changes published while we were not listening are gone: re-read the version.
        self._wake.set()
