"""The synchronous client: local evaluation, background polling and uploads."""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import threading
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

__all__ = ["Client"]

_USER_AGENT = f"sharpen-python/{__version__}"


class Client:
    """Assign units to variants and report outcomes to a sharpen service.

    In ``local`` mode (the default) the config is fetched once at construction
    (waiting at most ``timeout`` seconds; failure is not fatal) and every
    :meth:`assign` is evaluated in-process.  With ``stream`` (the default) the
    service pushes every config change on ``GET /v1/config/stream`` (a rollback
    reaches the client within a second or so); while the stream is down the
    config is polled every ``poll_interval`` seconds with ``If-None-Match``, and
    the stream is reconnected with jittered backoff.  ``remote`` mode asks
    ``POST /v1/assign`` and falls back to local evaluation on any failure.

    Exposures, :meth:`track` events, and :meth:`log_prediction` records and their
    :meth:`label` labels are uploaded by a background thread in
    batches of ``max_batch`` (or every ``flush_interval`` seconds), retried
    with backoff; at most ``max_buffer`` of each wait in memory, the rest are
    dropped and counted in :attr:`stats`.  Use it as a context manager, or
    call :meth:`close`, so that what is queued gets sent.

    ``exposure_cache`` is how many units per experiment are remembered as
    already exposed (their repeats are not resent; ``0`` sends every call);
    ``retry`` tunes the backoff (:class:`RetryPolicy`); ``overrides`` maps experiment
    keys to the variant every unit gets (see :meth:`force`); ``transport`` is an
    ``httpx.BaseTransport`` (e.g. ``httpx.MockTransport`` in tests).
    Invalid settings raise ``ValueError`` here, naming the argument.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        mode: Mode = "local",
        timeout: float = 2.0,
        transport: httpx.BaseTransport | None = None,
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
        self._http = httpx.Client(
            base_url=base_url,
            headers=self._core.headers,
            timeout=settings.timeout,
            transport=transport,
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._first_load = threading.Event()
        self._send_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._closed = False
        self._close_deadline = 0.0
        self._core.wake = self._wake_sender
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._stream_response: httpx.Response | None = None
        # The local-mode hot path, bound once: assign() makes a single call.
        self._local = self._core.assign_local if settings.mode == "local" else None
        if settings.mode == "remote":
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="sharpen-assign"
            )
        self._poller = threading.Thread(target=self._poll_loop, name="sharpen-config", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="sharpen-sender", daemon=True)
        self._poller.start()
        self._sender.start()
        self._first_load.wait(settings.timeout)

    # --- public API ---------------------------------------------------------------

    def assign(
        self,
        experiment: str,
        unit_id: str,
        attributes: Mapping[str, object] | None = None,
        *,
        default: str | None = None,
        expose: bool = True,
    ) -> Assignment:
        """The variant of ``unit_id`` in ``experiment``; never raises.

        ``attributes`` feed targeting.  ``default`` is the variant served when
        the experiment is unknown or no config was ever loaded (reasons
        ``unknown_experiment`` and ``fallback``).  ``expose=False`` logs no
        exposure (evaluated locally, in remote mode too): call :meth:`expose`
        with the answer once its treatment is actually used.  An overridden
        experiment (``overrides``, :meth:`force`) answers the forced variant,
        reason ``override``, and is never exposed.
        """
        local = self._local
        try:
            if local is not None and expose:
                return local(experiment, unit_id, attributes, default)
            if not expose:
                return self._core.assign_unexposed(experiment, unit_id, attributes, default)
            return self._assign_remote(experiment, unit_id, attributes, default)
        except Exception as exc:  # assign must never raise
            logger.exception("sharpen: assign(%r) failed unexpectedly: %r", experiment, exc)
            return Assignment(experiment, default, EMPTY_PAYLOAD, False, "fallback")

    def expose(self, assignment: Assignment) -> bool:
        """Log the exposure of an ``assign(..., expose=False)`` answer now (once its
        treatment is used). ``True`` when queued; ``False`` when the unit is not in the
        experiment, was already exposed to that variant, or the buffer is full."""
        try:
            return self._core.expose(assignment)
        except Exception as exc:  # never raise on the caller's path
            logger.exception("sharpen: expose() failed unexpectedly: %r", exc)
            return False

    def force(self, experiment: str, variant: str | None) -> None:
        """Serve ``variant`` to every unit of ``experiment`` from now on, reason
        ``override``, with no exposure (tests and QA); ``None`` removes the override."""
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
        """Queue an outcome event for ``POST /v1/events``; return its ``event_id``.

        ``variant`` defaults to what this client recently served the unit,
        else to its local evaluation with ``attributes`` (``None`` when the
        unit is not in the experiment: the service then decides).
        ``timestamp`` is a datetime (naive = UTC), epoch seconds or an
        ISO-8601 string, default now.  Raises :class:`InvalidEventError` for
        values the service would reject; a full buffer drops (and counts) it.
        """
        return self._core.queue_event(
            experiment,
            unit_id,
            values,
            attributes=attributes,
            timestamp=timestamp,
            event_id=event_id,
            variant=variant,
            covariates=covariates,
        )

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
        """Queue a prediction of ``model`` for ``POST /v1/models/{model}/records``.

        ``record_id`` (at most 128 characters) is what :meth:`label` names later;
        ``prediction`` is the served label or score (``None``: nothing was served);
        ``confidence`` in [0, 1]; ``features`` name -> number or ``None`` (input drift is
        watched per feature); ``attributes`` name -> scalar (the segments);
        ``offline_prediction`` the same model re-scored offline; ``timestamp`` as for
        :meth:`track` (the prediction time; windows are by it), default now.

        Never raises: ``True`` when queued, ``False`` when refused (anything the service
        would refuse, counted in ``stats.predictions_rejected`` and logged once per kind)
        or dropped (full buffer, or closed: ``stats.predictions_dropped``).
        """
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
        return queued

    def label(self, model: str, record_id: str, label: object) -> bool:
        """Queue the true ``label`` of a logged prediction (``POST .../labels``).

        Labels may come long after their prediction; the latest label of a record wins.
        A label is sent after the predictions queued before it. Never raises: ``True``
        when queued, ``False`` when refused or dropped (see :meth:`log_prediction`); a
        label naming no stored record counts in ``stats.labels_unmatched``.
        """
        queued = self._core.queue_label(model, record_id, label)
        return queued

    def refresh(self) -> bool:
        """Fetch the config now; ``True`` if it changed, ``False`` on 304.

        Raises :class:`TransportError`, :class:`HTTPStatusError` or
        :class:`ConfigError`; the current config is kept on failure.
        """
        if self._closed:
            raise ClientClosedError("refresh() after close()")
        try:
            response = self._http.get(CONFIG_PATH, headers=self._core.config_headers())
        except httpx.HTTPError as exc:
            raise TransportError(
                f"GET {CONFIG_PATH} failed: {exc!r}", request=request_of(exc)
            ) from exc
        return self._core.apply_config(response)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything queued now; ``True`` when nothing is left pending.

        Waits at most about ``timeout`` seconds (``None``: until the retries
        are exhausted).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._send_lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            self._drain(deadline)
        finally:
            self._send_lock.release()
        return self._core.pending() == 0

    def close(self, timeout: float = 10.0) -> None:
        """Stop polling, send what is queued (for at most ``timeout`` s), release resources."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._close_deadline = time.monotonic() + timeout
        self._core.closed = True
        self._stop.set()
        self._wake.set()
        self._end_stream()
        deadline = self._close_deadline
        self._poller.join(max(deadline - time.monotonic(), 0.0))
        self.flush(max(deadline - time.monotonic(), 0.0))
        self._sender.join(max(deadline - time.monotonic(), 0.0))
        self._core.abandon_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------

    def _wake_sender(self) -> None:
        # Called on every queued item while a full batch waits: skip the
        # Event's lock when it is already set.
        if not self._wake.is_set():
            self._wake.set()

    def _assign_remote(
        self,
        experiment: str,
        unit_id: str,
        attributes: Mapping[str, object] | None,
        default: str | None,
    ) -> Assignment:
        assert self._pool is not None
        core = self._core
        forced = core.override(experiment)
        if forced is not None:
            return forced
        future = None
        try:
            body = assign_body(experiment, unit_id, attributes)
            future = self._pool.submit(self._http.post, ASSIGN_PATH, json=body)
            response = future.result(timeout=self._settings.timeout)
            return core.remote_result(response, experiment, default)
        except Exception as exc:  # any failure falls back
            if future is not None:
                future.cancel()
            core.remote_failed(experiment, exc)
            return core.assign_local(experiment, unit_id, attributes, default)

    def _poll_loop(self) -> None:
        """Stream the config (polling while the stream is down), or poll it."""
        settings = self._settings
        failures = 0
        while True:
            if settings.stream:
                live, retry_after = self._stream_once()
                if self._stop.is_set():
                    return
                failures = 0 if live else failures + 1
                if not live and not self._poll_once():
                    return
                delay = self._core.stream_delay(failures, retry_after)
            else:
                if not self._poll_once() or settings.poll_interval is None:
                    return
                # +-10% jitter so that a fleet does not poll in lockstep.
                delay = settings.poll_interval * self._core.rng.uniform(0.9, 1.1)
            if self._stop.wait(delay):
                return

    def _poll_once(self) -> bool:
        """One ``GET /v1/config``; ``False`` once the client is closed."""
        try:
            self.refresh()
        except ClientClosedError:
            return False
        except Exception as exc:  # keep polling
            self._core.config_failed(exc)
        finally:
            self._first_load.set()
        return True

    def _stream_once(self) -> tuple[bool, float | None]:
        """Read the config stream until it ends: ``(whether it delivered, Retry-After)``."""
        core = self._core
        live = False
        timeout = httpx.Timeout(self._settings.timeout, read=STREAM_READ_TIMEOUT_S)
        try:
            with self._http.stream(
                "GET", STREAM_PATH, headers=core.stream_headers(), timeout=timeout
            ) as response:
                if response.status_code != 200:
                    core.stream_failed(f"HTTP {response.status_code}")
                    return False, parse_retry_after(response.headers.get("Retry-After"))
                self._stream_response = response
                if self._stop.is_set():
                    return False, None
                parser = EventParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None and core.apply_stream_event(event):
                        live = True
                        self._first_load.set()
        except Exception as exc:  # the stream is down: poll, then reconnect
            if not self._stop.is_set():
                core.stream_failed(repr(exc))
        finally:
            self._stream_response = None
        return live, None

    def _end_stream(self) -> None:
        """Unblock the config thread's read of the stream (close() from another thread)."""
        response = self._stream_response
        if response is None:
            return
        network = response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _send_loop(self) -> None:
        interval = self._settings.flush_interval
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return  # close() flushes with its own deadline
            with self._send_lock:
                self._drain(None)

    def _drain(self, deadline: float | None) -> None:
        while deadline is None or time.monotonic() < deadline:
            batches = self._core.next_batches()
            for batch in batches:
                self._send(batch, deadline)
            labels = self._core.label_batches()
            for batch in labels:
                self._send(batch, deadline)
            if not batches and not labels:
                return

    def _send(self, batch: Batch, deadline: float | None) -> None:
        core = self._core
        headers = {"Idempotency-Key": batch.idempotency_key, "Content-Type": "application/json"}
        while True:
            response: httpx.Response | None = None
            error: BaseException | None = None
            try:
                response = self._http.post(batch.path, content=batch.content(), headers=headers)
            except Exception as exc:  # network errors are retried
                error = exc
            if deadline is None and self._stop.is_set():
                deadline = self._close_deadline
            time_left = None if deadline is None else deadline - time.monotonic()
            delay = core.after_attempt(batch, response, error, time_left=time_left)
            if delay is None:
                return
            if deadline is None:
                self._stop.wait(delay)
            else:
                time.sleep(delay)
