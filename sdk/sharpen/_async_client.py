"""The asyncio client: same behaviour as :class:`Client`, with tasks for threads."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Self

import httpx

from sharpen._batching import Batch
from sharpen._config import Config
from sharpen._core import ClientCore, Mode, Settings, logger
from sharpen._exceptions import ClientClosedError, TransportError, request_of
from sharpen._models import EMPTY_PAYLOAD, Assignment
from sharpen._retry import RetryPolicy, parse_retry_after
from sharpen._stats import ClientStats
from sharpen._stream import STREAM_PATH, STREAM_READ_TIMEOUT_S, EventParser
from sharpen._version import __version__
from sharpen._wire import ASSIGN_PATH, CONFIG_PATH, assign_body

__all__ = ["AsyncClient"]

_USER_AGENT = f"sharpen-python/{__version__} (async)"


class AsyncClient:
    """The asyncio twin of :class:`Client`.

    Construction does no I/O: ``async with AsyncClient(...)`` (or ``await
    client.start()``) loads the config, waiting at most ``timeout`` seconds,
    and starts the config (stream, else polling) and upload tasks; the first
    :meth:`assign` does it otherwise.  Use it from one event loop; ``async with`` (or
    :meth:`aclose`) sends what is queued.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        mode: Mode = "local",
        timeout: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
        poll_interval: float | None = 30.0,
        flush_interval: float = 5.0,
        max_batch: int = 500,
        max_buffer: int = 100_000,
        exposure_cache: int = 100_000,
        retry: RetryPolicy | None = None,
        stream: bool = True,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        settings = Settings(
            api_key=api_key,
            mode=mode,
            timeout=timeout,
            poll_interval=poll_interval,
            flush_interval=flush_interval,
            max_batch=max_batch,
            max_buffer=max_buffer,
            exposure_cache=exposure_cache,
            retry=retry,
            stream=stream,
            overrides=overrides,
        )
        self._settings = settings
        self._core = ClientCore(settings, _USER_AGENT)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=self._core.headers,
            timeout=settings.timeout,
            transport=transport,
        )
        self._remote = settings.mode == "remote"
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._first_load = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False
        self._close_deadline = 0.0
        self._core.wake = self._wake.set

    # --- public API ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the background tasks and wait (at most ``timeout``) for the config."""
        self._spawn()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_load.wait(), self._settings.timeout)

    async def assign(
        self,
        experiment: str,
        unit_id: str,
        attributes: Mapping[str, object] | None = None,
        *,
        default: str | None = None,
        expose: bool = True,
    ) -> Assignment:
        """The variant of ``unit_id`` in ``experiment``; never raises (see ``Client.assign``)."""
        core = self._core
        try:
            if not self._started:
                await self.start()
            if not expose:
                return core.assign_unexposed(experiment, unit_id, attributes, default)
            if not self._remote:
                return core.assign_local(experiment, unit_id, attributes, default)
            return await self._assign_remote(experiment, unit_id, attributes, default)
        except Exception as exc:  # assign must never raise
            logger.exception("sharpen: assign(%r) failed unexpectedly: %r", experiment, exc)
            return Assignment(experiment, default, EMPTY_PAYLOAD, False, "fallback")

    def expose(self, assignment: Assignment) -> bool:
        """Log the exposure of an ``assign(..., expose=False)`` answer (see ``Client.expose``)."""
        try:
            return self._core.expose(assignment)
        except Exception as exc:  # never raise on the caller's path
            logger.exception("sharpen: expose() failed unexpectedly: %r", exc)
            return False

    def force(self, experiment: str, variant: str | None) -> None:
        """Override ``experiment`` for every unit (see ``Client.force``); ``None`` removes it."""
        self._core.force(experiment, variant)

    def track(
        self,
        experiment: str,
        unit_id: str,
        values: Mapping[str, float],
        *,
        attributes: Mapping[str, object] | None = None,
        timestamp: object = None,
        event_id: str | None = None,
        variant: str | None = None,
        covariates: Mapping[str, float] | None = None,
    ) -> str:
        """Queue an outcome event; return its ``event_id`` (see ``Client.track``)."""
        event_id = self._core.queue_event(
            experiment,
            unit_id,
            values,
            attributes=attributes,
            timestamp=timestamp,
            event_id=event_id,
            variant=variant,
            covariates=covariates,
        )
        if not self._started:
            with contextlib.suppress(RuntimeError):  # no running loop: sent on flush
                asyncio.get_running_loop()
                self._spawn()
        return event_id

    def log_prediction(
        self,
        model: str,
        record_id: str,
        prediction: object,
        *,
        confidence: float | None = None,
        features: Mapping[str, float | None] | None = None,
        attributes: Mapping[str, object] | None = None,
        offline_prediction: object = None,
        timestamp: object = None,
    ) -> bool:
        """Queue a prediction; never raises (see ``Client.log_prediction``)."""
        queued = self._core.queue_prediction(
            model,
            record_id,
            prediction,
            confidence=confidence,
            features=features,
            attributes=attributes,
            offline_prediction=offline_prediction,
            timestamp=timestamp,
        )
        if queued and not self._started:
            with contextlib.suppress(RuntimeError):  # no running loop: sent on flush
                asyncio.get_running_loop()
                self._spawn()
        return queued

    def label(self, model: str, record_id: str, label: object) -> bool:
        """Queue a late label; never raises (see ``Client.label``)."""
        queued = self._core.queue_label(model, record_id, label)
        if queued and not self._started:
            with contextlib.suppress(RuntimeError):  # no running loop: sent on flush
                asyncio.get_running_loop()
                self._spawn()
        return queued

    async def refresh(self) -> bool:
        """Fetch the config now; ``True`` if it changed (see ``Client.refresh``)."""
        if self._closed:
            raise ClientClosedError("refresh() after aclose()")
        try:
            response = await self._http.get(CONFIG_PATH, headers=self._core.config_headers())
        except httpx.HTTPError as exc:
            raise TransportError(
                f"GET {CONFIG_PATH} failed: {exc!r}", request=request_of(exc)
            ) from exc
        return self._core.apply_config(response)

    async def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything queued now; ``True`` when nothing is left pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            await asyncio.wait_for(self._send_lock.acquire(), timeout)
        except TimeoutError:
            return False
        try:
            await self._drain(deadline)
        finally:
            self._send_lock.release()
        return self._core.pending() == 0

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop the tasks, send what is queued (for at most ``timeout`` s), release resources."""
        if self._closed:
            return
        self._closed = True
        self._close_deadline = deadline = time.monotonic() + timeout
        self._core.closed = True
        self._stop.set()
        self._wake.set()
        await self.flush(max(deadline - time.monotonic(), 0.0))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._core.abandon_pending()
        await self._http.aclose()

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the client's counters."""
        return self._core.stats()

    @property
    def mode(self) -> Mode:
        """``"local"`` or ``"remote"``, as constructed."""
        return self._settings.mode

    @property
    def config(self) -> Config | None:
        """The config in use, ``None`` until one was loaded."""
        return self._core.config

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- internals ----------------------------------------------------------------

    def _spawn(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        self._tasks = [
            asyncio.create_task(self._poll_loop(), name="sharpen-config"),
            asyncio.create_task(self._send_loop(), name="sharpen-sender"),
        ]

    async def _assign_remote(
        self,
        experiment: str,
        unit_id: str,
        attributes: Mapping[str, object] | None,
        default: str | None,
    ) -> Assignment:
        core = self._core
        forced = core.override(experiment)
        if forced is not None:
            return forced
        try:
            body = assign_body(experiment, unit_id, attributes)
            response = await asyncio.wait_for(
                self._http.post(ASSIGN_PATH, json=body), self._settings.timeout
            )
            return core.remote_result(response, experiment, default)
        except Exception as exc:  # any failure falls back
            core.remote_failed(experiment, exc)
            return core.assign_local(experiment, unit_id, attributes, default)

    async def _poll_loop(self) -> None:
        """Stream the config (polling while the stream is down), or poll it."""
        settings = self._settings
        failures = 0
        while True:
            if settings.stream:
                live, retry_after = await self._stream_once()
                failures = 0 if live else failures + 1
                if not live and not await self._poll_once():
                    return
                delay = self._core.stream_delay(failures, retry_after)
            else:
                if not await self._poll_once() or settings.poll_interval is None:
                    return
                # +-10% jitter so that a fleet does not poll in lockstep.
                delay = settings.poll_interval * self._core.rng.uniform(0.9, 1.1)
            if await self._stopped_within(delay):
                return

    async def _poll_once(self) -> bool:
        """One ``GET /v1/config``; ``False`` once the client is closed."""
        try:
            await self.refresh()
        except ClientClosedError:
            return False
        except Exception as exc:  # keep polling
            self._core.config_failed(exc)
        finally:
            self._first_load.set()
        return True

    async def _stream_once(self) -> tuple[bool, float | None]:
        """Read the config stream until it ends: ``(whether it delivered, Retry-After)``."""
        core = self._core
        live = False
        timeout = httpx.Timeout(self._settings.timeout, read=STREAM_READ_TIMEOUT_S)
        try:
            async with self._http.stream(
                "GET", STREAM_PATH, headers=core.stream_headers(), timeout=timeout
            ) as response:
                if response.status_code != 200:
                    core.stream_failed(f"HTTP {response.status_code}")
                    return False, parse_retry_after(response.headers.get("Retry-After"))
                parser = EventParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None and core.apply_stream_event(event):
                        live = True
                        self._first_load.set()
        except Exception as exc:  # the stream is down: poll, then reconnect
            core.stream_failed(repr(exc))
        return live, None

    async def _send_loop(self) -> None:
        interval = self._settings.flush_interval
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            if self._stop.is_set():
                return  # aclose() flushes with its own deadline
            async with self._send_lock:
                await self._drain(None)

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _drain(self, deadline: float | None) -> None:
        while deadline is None or time.monotonic() < deadline:
            batches = self._core.next_batches()
            for batch in batches:
                await self._send(batch, deadline)
            labels = self._core.label_batches()
            for batch in labels:
                await self._send(batch, deadline)
            if not batches and not labels:
                return

    async def _send(self, batch: Batch, deadline: float | None) -> None:
        core = self._core
        headers = {"Idempotency-Key": batch.idempotency_key, "Content-Type": "application/json"}
        while True:
            response: httpx.Response | None = None
            error: BaseException | None = None
            try:
                response = await self._http.post(
                    batch.path, content=batch.content(), headers=headers
                )
            except Exception as exc:  # network errors are retried
                error = exc
            if deadline is None and self._stop.is_set():
                deadline = self._close_deadline
            time_left = None if deadline is None else deadline - time.monotonic()
            delay = core.after_attempt(batch, response, error, time_left=time_left)
            if delay is None:
                return
            if deadline is None:
                await self._stopped_within(delay)
            else:
                await asyncio.sleep(delay)
