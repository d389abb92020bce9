"""State and decisions shared by :class:`Client` and :class:`AsyncClient`.

Everything here is free of I/O: the clients own the HTTP calls, threads and
tasks, and ask this core what to send, how to read each answer and whether to
retry.  So the sync and async clients behave the same by construction.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

import httpx

from sharpen._batching import Batch, BoundedBuffer
from sharpen._canonical import canonical
from sharpen._config import Config, ExperimentConfig, parse_config
from sharpen._evaluation import assign_from_config, evaluate
from sharpen._exceptions import ConfigError, HTTPStatusError, InvalidEventError
from sharpen._models import EMPTY_PAYLOAD, Assignment, UnexposedAssignment
from sharpen._records import ModelItem, label_item, prediction_item
from sharpen._refusals import RefusalLog
from sharpen._retry import RetryPolicy, classify, parse_retry_after
from sharpen._stats import ClientStats, Counters
from sharpen._stream import (
    RECONNECT_SPREAD_S,
    STREAM_MAX_BACKOFF_S,
    STREAM_PATH,
    ServerEvent,
    bare_etag,
)
from sharpen._wire import (
    ExposureRecord,
    auth_headers,
    event_body,
    exposure_content,
    parse_assign_response,
)

__all__ = ["ClientCore", "Mode", "Settings"]

logger = logging.getLogger("sharpen")

_now = time.time

Mode = Literal["local", "remote"]


class Settings:
    """Validated client settings (``ValueError`` naming the bad argument)."""

    __slots__ = (
        "api_key",
        "exposure_cache",
        "flush_interval",
        "max_batch",
        "max_buffer",
        "mode",
        "overrides",
        "poll_interval",
        "retry",
        "stream",
        "timeout",
    )

    def __init__(
        self,
        *,
        api_key: str,
        mode: str,
        timeout: float,
        poll_interval: float | None,
        flush_interval: float,
        max_batch: int,
        max_buffer: int,
        exposure_cache: int,
        retry: RetryPolicy | None,
        stream: bool = True,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if mode not in ("local", "remote"):
            raise ValueError(f"mode must be 'local' or 'remote' (got {mode!r})")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds (got {timeout!r})")
        if poll_interval is not None and not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds or None (got {poll_interval!r})")
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be > 0 seconds (got {flush_interval!r})")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 (got {max_batch!r})")
        if max_buffer < max_batch:
            raise ValueError(f"max_buffer must be >= max_batch (got {max_buffer!r})")
        if exposure_cache < 0:
            raise ValueError(f"exposure_cache must be >= 0 (got {exposure_cache!r})")
        self.api_key = api_key
        self.mode: Mode = "remote" if mode == "remote" else "local"
        self.timeout = float(timeout)
        self.poll_interval = poll_interval
        self.flush_interval = float(flush_interval)
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.exposure_cache = exposure_cache
        self.retry = retry or RetryPolicy()
        self.stream = bool(stream)
        self.overrides = dict(overrides or {})
        for key, variant in self.overrides.items():
            check_override(key, variant, "overrides")


class ClientCore:
    """Config, buffers, counters and the retry decisions of one client."""

    def __init__(self, settings: Settings, user_agent: str) -> None:
        self.settings = settings
        self.headers = auth_headers(settings.api_key, user_agent)
        self.config: Config | None = None
        self.exposures: BoundedBuffer[ExposureRecord] = BoundedBuffer(settings.max_buffer)
        self.events: BoundedBuffer[dict[str, Any]] = BoundedBuffer(settings.max_buffer)
        self.predictions: BoundedBuffer[ModelItem] = BoundedBuffer(settings.max_buffer)
        self.labels: BoundedBuffer[ModelItem] = BoundedBuffer(settings.max_buffer)
        self.counters = Counters()
        self.refusals = RefusalLog()
        self.rng = random.Random()
        self.closed = False
        self.wake: Callable[[], None] = _nothing
        self._max_batch = settings.max_batch
        self._wake_at = settings.max_batch - 1
        self._max_buffer = settings.max_buffer
        self._resending = False
        self._pending_exposures = self.exposures.items
        self._cache_size = settings.exposure_cache
        # experiment key -> (its config, unit id -> variant last exposed, its
        # version): one lookup per assign finds all three.  Swapped whole when
        # the config changes.  An overridden experiment's config answers the
        # override to every unit (as a shipped one does), so the hot path does
        # not look overrides up.
        self._live: dict[str, tuple[ExperimentConfig, dict[str, str], int]] = {}
        self._overrides = settings.overrides

    # --- assignment -----------------------------------------------------------

    def assign_local(
        self,
        experiment: str,
        unit_id: object,
        attributes: Mapping[str, object] | None,
        default: str | None,
    ) -> Assignment:
        """Evaluate in-process; queue an exposure when the unit is in the experiment.

        This is the hot path of local mode: the exposure queueing is inlined
        (one dict lookup when the unit was already exposed, else one tuple
        appended to a deque) and everything else was precomputed at install.
        """
        live = self._live.get(experiment)
        if live is None:
            return self._not_live(experiment, default)
        entry, exposed, version = live
        if type(unit_id) is not str:
            unit_id = canonical(unit_id)
        result = evaluate(entry, unit_id, attributes)  # type: ignore[arg-type]
        if result.in_experiment:
            variant = result.variant
            # The analysis counts a unit from its first exposure: the same
            # assignment of the same unit is not resent while remembered.
            if exposed.get(unit_id) != variant:  # type: ignore[arg-type]
                pending = self._pending_exposures
                # One comparison on the common path: past the wake mark, _room() tells
                # the sender and refuses when full.
                if len(pending) >= self._wake_at and not self._room():
                    return result
                pending.append(
                    # A copy: callers may reuse and mutate their attributes dict.
                    (experiment, unit_id, variant, version, _now(), attributes and dict(attributes))  # type: ignore[arg-type]
                )
                if len(exposed) < self._cache_size:
                    exposed[unit_id] = variant  # type: ignore[index,assignment]
                elif self._cache_size:
                    exposed.clear()
                    exposed[unit_id] = variant  # type: ignore[index,assignment]
        return result

    def _room(self) -> bool:
        """A full batch waits: wake the sender; ``False`` (one more drop) when full."""
        if len(self._pending_exposures) >= self._max_buffer:
            self.exposures.drop(1)
            return False
        self.wake()
        return True

    def assign_unexposed(
        self,
        experiment: str,
        unit_id: object,
        attributes: Mapping[str, object] | None,
        default: str | None,
    ) -> Assignment:
        """:meth:`assign_local` without the exposure: an in-experiment answer carries what
        :meth:`expose` needs to log it later."""
        live = self._live.get(experiment)
        if live is None:
            return self._not_live(experiment, default)
        entry, _, version = live
        unit = unit_id if type(unit_id) is str else canonical(unit_id)
        result = evaluate(entry, unit, attributes)  # type: ignore[arg-type]
        if not result.in_experiment:
            return result
        return UnexposedAssignment(
            result.experiment,
            result.variant,
            result.payload,
            True,
            result.reason,
            unit_id=unit,  # type: ignore[arg-type]
            attributes=attributes and dict(attributes),
            config_version=version,
        )

    def expose(self, assignment: Assignment) -> bool:
        """Queue the exposure of an ``expose=False`` answer; ``True`` when queued (not when
        not in the experiment, already exposed, or dropped)."""
        if not isinstance(assignment, UnexposedAssignment) or not assignment.in_experiment:
            return False
        variant = assignment.variant
        unit = assignment.unit_id
        live = self._live.get(assignment.experiment)
        exposed = live[1] if live is not None and live[2] == assignment.config_version else None
        if exposed is not None and exposed.get(unit) == variant:
            return False
        if self.closed or len(self._pending_exposures) >= self._max_buffer:
            self.exposures.drop(1)
            return False
        self._pending_exposures.append(
            (
                assignment.experiment,
                unit,
                variant,
                assignment.config_version,
                _now(),
                assignment.attributes,
            )  # type: ignore[arg-type]
        )
        if exposed is not None and self._cache_size and variant is not None:
            if len(exposed) >= self._cache_size:
                exposed.clear()
            exposed[unit] = variant
        if len(self._pending_exposures) >= self._max_batch:
            self.wake()
        return True

    def override(self, experiment: str) -> Assignment | None:
        """The forced answer of ``experiment``, if it is overridden."""
        variant = self._overrides.get(experiment)
        if variant is None:
            return None
        live = self._live.get(experiment)
        if live is not None:
            return live[0].fixed
        return Assignment(experiment, variant, EMPTY_PAYLOAD, False, "override")

    def force(self, experiment: str, variant: str | None) -> None:
        """Serve ``variant`` for ``experiment`` to every unit from now on (``None``: stop)."""
        if variant is None:
            self._overrides.pop(experiment, None)
        else:
            check_override(experiment, variant, "force")
            self._overrides[experiment] = variant
        if self.config is not None:
            self.install(self.config)

    def _not_live(self, experiment: str, default: str | None) -> Assignment:
        forced = self._overrides.get(experiment)
        if forced is not None:
            return Assignment(experiment, forced, EMPTY_PAYLOAD, False, "override")
        reason = "fallback" if self.config is None else "unknown_experiment"
        return Assignment(experiment, default, EMPTY_PAYLOAD, False, reason)

    def recent_variant(self, experiment: str, unit_id: str) -> str | None:
        """The variant recently served to ``unit_id`` in ``experiment``, if remembered."""
        live = self._live.get(experiment)
        return None if live is None else live[1].get(unit_id)

    def remote_result(
        self, response: httpx.Response, experiment: str, default: str | None
    ) -> Assignment:
        """The assignment in a ``POST /v1/assign`` answer; raises when unusable."""
        if response.status_code != 200:
            raise HTTPStatusError(
                f"POST /v1/assign answered {response.status_code}", response=response
            )
        result = parse_assign_response(response.json(), experiment)
        if result.variant is None and default is not None:
            result = replace(result, variant=default)
        return result

    def remote_failed(self, experiment: str, error: BaseException) -> None:
        self.counters.add("remote_errors")
        logger.warning(
            "sharpen: remote assign of %r failed (%r); evaluating locally", experiment, error
        )

    # --- tracking -------------------------------------------------------------

    def queue_event(
        self,
        experiment: str,
        unit_id: object,
        values: object,
        *,
        attributes: Mapping[str, object] | None,
        timestamp: object,
        event_id: str | None,
        variant: str | None,
        covariates: object,
    ) -> str:
        """Validate and queue one outcome event; return its ``event_id``."""
        unit = canonical(unit_id)
        if variant is None and unit:
            # What this process served the unit wins; else evaluate it now.
            variant = self.recent_variant(experiment, unit)
            if variant is None and self.config is not None:
                assigned = assign_from_config(self.config, experiment, unit, attributes)
                variant = assigned.variant if assigned.in_experiment else None
        event = event_body(
            experiment=experiment,
            unit_id=unit_id,
            values=values,
            variant=variant,
            attributes=attributes,
            timestamp=timestamp,
            event_id=event_id,
            covariates=covariates,
        )
        if self.closed:
            self.events.drop(1)
            logger.warning("sharpen: track() after close(); event %s dropped", event["event_id"])
        elif self.events.add(event) and len(self.events) >= self._max_batch:
            self.wake()
        return str(event["event_id"])

    # --- model logs -------------------------------------------------------------

    def queue_prediction(
        self,
        model: object,
        record_id: object,
        prediction: object,
        *,
        confidence: object,
        features: object,
        attributes: object,
        offline_prediction: object,
        timestamp: object,
    ) -> bool:
        """Validate and queue one prediction record; ``False`` when refused or dropped."""
        try:
            item = prediction_item(
                model,
                record_id,
                prediction,
                confidence=confidence,
                features=features,
                attributes=attributes,
                offline_prediction=offline_prediction,
                timestamp=timestamp,
            )
        except Exception as exc:  # never raise on the caller's path
            self._refused_here("predictions", exc)
            return False
        return self._queue_model(self.predictions, item, "predictions")

    def queue_label(self, model: object, record_id: object, label: object) -> bool:
        """Validate and queue one late label; ``False`` when refused or dropped."""
        try:
            item = label_item(model, record_id, label)
        except Exception as exc:  # never raise on the caller's path
            self._refused_here("labels", exc)
            return False
        return self._queue_model(self.labels, item, "labels")

    def _refused_here(self, noun: str, exc: Exception) -> None:
        self.counters.add(f"{noun}_rejected")
        field = exc.field if isinstance(exc, InvalidEventError) else type(exc).__name__
        self.refusals.note_local(noun, field, str(exc))

    def _queue_model(self, buffer: BoundedBuffer[ModelItem], item: ModelItem, noun: str) -> bool:
        if self.closed:
            buffer.drop(1)
            logger.warning("sharpen: %s after close(); dropped", noun)
            return False
        if not buffer.add(item):
            return False
        if len(buffer) >= self._max_batch:
            self.wake()
        return True

    # --- batching and retries ---------------------------------------------------

    def pending(self) -> int:
        return len(self.exposures) + len(self.events) + len(self.predictions) + len(self.labels)

    def next_batches(self) -> list[Batch]:
        """Up to one batch of each kind but labels (predictions: one per model), oldest
        items first. Send :meth:`label_batches` after these: a label sent before its
        record is not matched."""
        batches = []
        records = self.exposures.take(self._max_batch)
        if records:
            batches.append(Batch("exposures", len(records), exposure_content(records)))
        events = self.events.take(self._max_batch)
        if events:
            batches.append(Batch("events", len(events), {"events": events}))
        batches += _per_model("records", self.predictions.take(self._max_batch))
        return batches

    def label_batches(self) -> list[Batch]:
        """Up to one batch of labels per model, once the predictions before them were sent
        (none this round when some predictions were queued again to be resent)."""
        if self._resending:
            self._resending = False
            return []
        return _per_model("labels", self.labels.take(self._max_batch))

    def after_attempt(
        self,
        batch: Batch,
        response: httpx.Response | None,
        error: BaseException | None,
        *,
        time_left: float | None = None,
    ) -> float | None:
        """Count a finished batch and return ``None``, or the delay before its retry.

        ``time_left`` (seconds, when closing) gives up rather than wait past it.
        """
        retry_after = None
        if response is not None:
            outcome = classify(response.status_code)
            if outcome != "retry":
                self._finish(batch, outcome, response)
                return None
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            reason = f"HTTP {response.status_code}"
        else:
            reason = repr(error)
        batch.failures += 1
        policy = self.settings.retry
        delay = policy.delay(batch.failures, retry_after, self.rng)
        if batch.failures >= policy.max_attempts or (time_left is not None and delay > time_left):
            logger.warning(
                "sharpen: giving up on %d %s after %d attempts (%s)",
                batch.size,
                batch.kind,
                batch.failures,
                reason,
            )
            self._finish(batch, "failed", None)
            return None
        self.counters.add("retries")
        return delay

    def _finish(self, batch: Batch, outcome: str, response: httpx.Response | None) -> None:
        if batch.kind == "events" and response is not None and outcome != "failed":
            self._events_answered(batch, outcome, response)
            return
        if batch.model is not None and response is not None and outcome != "failed":
            self._model_answered(batch, outcome, response)
            return
        self.counters.add(f"{_NOUNS.get(batch.kind, batch.kind)}_{outcome}", batch.size)
        if outcome == "rejected" and response is not None:
            logger.warning(
                "sharpen: service rejected %d %s: HTTP %d %s",
                batch.size,
                batch.kind,
                response.status_code,
                response.text[:500],
            )

    def _events_answered(self, batch: Batch, outcome: str, response: httpx.Response) -> None:
        """Count an events batch the service answered, and log each kind of refusal once.

        A 202 may refuse some events (``rejected_count``, listed by index in
        ``rejected``): the others were kept. Refused events are never resent.
        """
        body = _json_object(response)
        if outcome == "sent":
            refused = min(max(_count(body.get("rejected_count")), 0), batch.size)
            self.counters.add("events_sent", batch.size - refused)
            self.counters.add("events_duplicates", _count(body.get("duplicates")))
            entries = body.get("rejected")
        else:
            refused = batch.size
            error = body.get("error")
            entries = error.get("details") if isinstance(error, dict) else None
        if refused:
            self.counters.add("events_rejected", refused)
            self.refusals.note(entries, refused, batch.size, response)

    def _model_answered(self, batch: Batch, outcome: str, response: httpx.Response) -> None:
        """Count a records or labels batch the service answered.

        The service keeps all of a batch or none: when it names the items at fault, those
        are counted as rejected and the others queued again (at the front, so a label
        still follows its record); otherwise the whole batch is rejected.
        """
        body = _json_object(response)
        noun = _NOUNS[batch.kind]
        if outcome == "sent":
            if batch.kind == "records":
                self.counters.add("predictions_sent", batch.size)
                self.counters.add("predictions_duplicates", _count(body.get("duplicates")))
            else:
                self.counters.add("labels_sent", batch.size)
                unmatched = min(max(_count(body.get("unmatched")), 0), batch.size)
                if unmatched:
                    self.counters.add("labels_unmatched", unmatched)
                    self.refusals.note_local(
                        "labels",
                        "record_id",
                        f"{unmatched} of {batch.size} labels for model {batch.model!r} name "
                        "no stored record (log the prediction first); the service does not "
                        "keep them (stats.labels_unmatched)",
                    )
            return
        error = body.get("error")
        entries = error.get("details") if isinstance(error, dict) else None
        bad = _indices(entries, batch.kind, batch.size)
        items = batch.items or []
        if bad and len(bad) < batch.size and len(items) == batch.size:
            buffer = self.predictions if batch.kind == "records" else self.labels
            buffer.requeue([item for i, item in enumerate(items) if i not in bad])
            self._resending = True
            refused = len(bad)
        else:
            refused = batch.size
        self.counters.add(f"{noun}_rejected", refused)
        self.refusals.note(entries, refused, batch.size, response, noun)

    def abandon_pending(self) -> None:
        """Count everything still queued as dropped (after the close deadline)."""
        self.exposures.drop(self.exposures.clear())
        self.events.drop(self.events.clear())
        self.predictions.drop(self.predictions.clear())
        self.labels.drop(self.labels.clear())

    # --- config -------------------------------------------------------------------

    def config_headers(self) -> dict[str, str]:
        config = self.config
        if config is not None and config.etag:
            return {"If-None-Match": config.etag}
        return {}

    def apply_config(self, response: httpx.Response) -> bool:
        """Install the config of a ``GET /v1/config`` answer; ``True`` if it changed.

        304 keeps the current config.  Raises :class:`HTTPStatusError` or
        :class:`ConfigError` (the current config is kept then too).
        """
        if response.status_code == 304 and self.config is not None:
            self.counters.add("config_not_modified")
            return False
        if response.status_code != 200:
            raise HTTPStatusError(
                f"GET /v1/config answered {response.status_code}", response=response
            )
        try:
            document = response.json()
        except ValueError:
            raise ConfigError("GET /v1/config: body is not JSON") from None
        config = parse_config(document, etag=response.headers.get("ETag"))
        for key, why in config.skipped.items():
            logger.warning("sharpen: skipping malformed experiment %r: %s", key, why)
        self.install(config)
        self.counters.add("config_loads")
        return True

    def install(self, config: Config) -> None:
        """Use ``config`` from now on (keeping what was exposed under it)."""
        previous = self._live
        overrides = self._overrides
        live = {}
        for key, entry in config.experiments.items():
            old = previous.get(key)
            keep = old is not None and old[2] == entry.version
            forced = overrides.get(key)
            if forced is not None:
                entry = _forced(entry, forced)
            live[key] = (entry, old[1] if keep and old is not None else {}, entry.version)
        self._live = live
        self.config = config

    def stream_headers(self) -> dict[str, str]:
        """``Last-Event-ID``: the service then skips a config this client already has."""
        headers = {"Accept": "text/event-stream"}
        config = self.config
        if config is not None and config.etag:
            headers["Last-Event-ID"] = bare_etag(config.etag)
        return headers

    def apply_stream_event(self, event: ServerEvent) -> bool:
        """Install the config a stream event carries; ``True`` for an event that shows the
        stream is live (a config, or ``unchanged``). Raises :class:`ConfigError`."""
        if event.kind == "unchanged":
            return True
        if event.kind != "config":
            return False
        try:
            document = json.loads(event.data)
        except ValueError:
            raise ConfigError(f"{STREAM_PATH}: config event is not JSON") from None
        etag = f'"{event.event_id}"' if event.event_id else None
        config = parse_config(document, etag=etag)
        for key, why in config.skipped.items():
            logger.warning("sharpen: skipping malformed experiment %r: %s", key, why)
        self.install(config)
        self.counters.add("config_pushes")
        return True

    def stream_failed(self, error: BaseException | str) -> None:
        self.counters.add("stream_errors")
        logger.info("sharpen: config stream down (%s); polling until it reconnects", error)

    def stream_delay(self, failures: int, retry_after: float | None) -> float:
        """Seconds before the next stream attempt: spread over ``RECONNECT_SPREAD_S`` after a
        stream the service ended; after ``failures`` failed attempts a draw in ``[d/2, d]``,
        ``d = min(30, 2**(failures-1))``, or ``[r, 1.25 r]`` for a ``Retry-After`` of ``r``;
        at most the poll interval (a service without streams is still polled that often)."""
        if retry_after is not None:
            delay = retry_after * self.rng.uniform(1.0, 1.25)
        elif failures == 0:
            return self.rng.uniform(0.1, RECONNECT_SPREAD_S)
        else:
            ceiling = min(STREAM_MAX_BACKOFF_S, 2.0 ** (failures - 1))
            delay = self.rng.uniform(ceiling / 2, ceiling)
        return min(delay, self.settings.poll_interval or delay)

    def config_failed(self, error: BaseException) -> None:
        self.counters.add("config_errors")
        logger.warning("sharpen: config refresh failed: %r", error)

    def stats(self) -> ClientStats:
        config = self.config
        return self.counters.snapshot(
            config_skipped_entries=len(config.skipped) if config is not None else 0,
            exposures_pending=len(self.exposures),
            exposures_dropped=self.exposures.dropped,
            events_pending=len(self.events),
            events_dropped=self.events.dropped,
            predictions_pending=len(self.predictions),
            predictions_dropped=self.predictions.dropped,
            labels_pending=len(self.labels),
            labels_dropped=self.labels.dropped,
        )


_NOUNS = {"records": "predictions", "labels": "labels"}


def _nothing() -> None:
    return None


def check_override(experiment: object, variant: object, where: str) -> None:
    if not isinstance(experiment, str) or not experiment:
        raise ValueError(f"{where}: experiment keys must be non-empty strings (got {experiment!r})")
    if not isinstance(variant, str) or not variant:
        raise ValueError(f"{where}[{experiment!r}] must be a variant key (got {variant!r})")


def _forced(entry: ExperimentConfig, variant: str) -> ExperimentConfig:
    """``entry`` answering ``variant`` (with its payload, if it is one of the entry's) to
    every unit, reason ``override``: never in the experiment, so never exposed."""
    payload = next((v.payload for v in entry.variants if v.key == variant), EMPTY_PAYLOAD)
    forced = replace(entry)
    object.__setattr__(forced, "fixed", Assignment(entry.key, variant, payload, False, "override"))
    return forced


def _per_model(kind: Literal["records", "labels"], items: list[ModelItem]) -> list[Batch]:
    """One batch per model, items in their queued order."""
    by_model: dict[str, list[ModelItem]] = {}
    for item in items:
        by_model.setdefault(item[0], []).append(item)
    return [
        Batch(kind, len(group), {kind: [body for _, body in group]}, model=model, items=group)
        for model, group in by_model.items()
    ]


def _indices(entries: object, kind: str, size: int) -> set[int]:
    """The item indices a 422's details name (``records.3.confidence`` -> 3)."""
    out: set[int] = set()
    if not isinstance(entries, list):
        return out
    for entry in entries:
        field = entry.get("field") if isinstance(entry, dict) else None
        parts = field.split(".") if isinstance(field, str) else []
        if len(parts) >= 2 and parts[0] == kind and parts[1].isdigit() and int(parts[1]) < size:
            out.add(int(parts[1]))
    return out


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
