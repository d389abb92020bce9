"""Assignment as the endpoints need it: body bytes in, encoded answer out.

Evaluation is the SDK's (``evaluate``); the service adds the in-memory config,
request validation and exposure logging. An answer with ``in_experiment: true`` is only
given once its exposure is admitted to the buffer (else the request is refused with
429/503 + Retry-After, see ``_exposures``). Nothing here awaits Redis except
:meth:`Assigner.record_exposures`, which must know the write happened before answering.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Final

import msgspec

from service.assignment._cache import ConfigSource
from service.assignment._compile import CompiledConfig
from service.assignment._exposures import ExposureBuffer
from service.assignment._requests import MAX_UNIT_ID, Decoders, ExposureIn, invalid_body
from service.assignment._sdk import evaluate
from service.errors import FieldError, NotFound, Unavailable, ValidationFailed, field_error
from service.spec.models import KEY_PATTERN
from service.store.event_codec import TIMESTAMP_RANGE, epoch_seconds
from service.store.exposures import ExposureRow

__all__ = ["Assigner"]

_KEY: Final = re.compile(KEY_PATTERN)
_MAX_DETAILS: Final = 50


def _bad_unit(field: str) -> ValidationFailed:
    return ValidationFailed(
        "invalid request",
        [field_error(field, f"must be a non-empty string of at most {MAX_UNIT_ID} characters")],
    )


def _unit_id(value: str | int, field: str) -> str:
    if type(value) is str:
        if 0 < len(value) <= MAX_UNIT_ID:
            return value
        raise _bad_unit(field)
    return str(value)  # an integer id: its decimal digits, as the SDK's canonical form


class Assigner:
    """Assign, batch-assign and record SDK exposures against the cached config."""

    def __init__(
        self,
        cache: ConfigSource,
        buffer: ExposureBuffer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.buffer = buffer
        self._clock = clock
        self._decoders = Decoders()

    def config(self) -> CompiledConfig:
        """The cached config; 503 until the first load from Redis succeeded."""
        current = self.cache.current
        if current is None:
            raise Unavailable("experiment config not loaded yet; retry shortly", retry_after_s=1)
        return current

    def assign(self, body: bytes) -> bytes:
        """``POST /v1/assign``: the encoded assignment, once its exposure is admitted."""
        config = self.config()
        try:
            request = self._decoders.assign.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
            raise invalid_body(exc, body) from None
        entry = config.experiments.get(request.experiment)
        if entry is None:
            raise _unknown(request.experiment, "experiment")
        unit_id = request.unit_id
        if type(unit_id) is not str or not 0 < len(unit_id) <= MAX_UNIT_ID:
            unit_id = _unit_id(unit_id, "unit_id")
        assignment = evaluate(entry, unit_id, request.attributes)
        if assignment.in_experiment:
            variant: str = assignment.variant  # type: ignore[assignment]  # set when in
            row = (entry.key, unit_id, variant, entry.version, self._clock(), request.attributes)
            if not self.buffer.offer(row):
                raise self.buffer.refusal(entry.key)
        return config.response(assignment)

    def assign_batch(self, body: bytes) -> bytes:
        """``POST /v1/assign/batch``: ``{"assignments": [...]}`` in request order, once every
        exposure of the batch is admitted (all or none)."""
        config = self.config()
        try:
            request = self._decoders.batch.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
            raise invalid_body(exc, body) from None
        entry = config.experiments.get(request.experiment)
        if entry is None:
            raise _unknown(request.experiment, "experiment")
        buffer = self.buffer
        if entry.fixed is None and not buffer.precheck(entry.key, len(request.units)):
            raise buffer.refusal(entry.key)  # refused before the work of evaluating
        # Validate every unit before logging any exposure: a 422 logs nothing.
        units: list[tuple[str, Mapping[str, object] | None]] = []
        for i, unit in enumerate(request.units):
            unit_id = unit.unit_id
            if type(unit_id) is not str or not 0 < len(unit_id) <= MAX_UNIT_ID:
                unit_id = _unit_id(unit_id, f"units.{i}.unit_id")
            units.append((unit_id, unit.attributes))
        now = self._clock()
        response = config.response
        rows: list[ExposureRow] = []
        parts = []
        for unit_id, attributes in units:
            assignment = evaluate(entry, unit_id, attributes)
            if assignment.in_experiment:
                variant: str = assignment.variant  # type: ignore[assignment]  # set when in
                rows.append((entry.key, unit_id, variant, entry.version, now, attributes))
            parts.append(response(assignment))
        if not buffer.offer_many(entry.key, rows):
            raise buffer.refusal(entry.key)
        return b'{"assignments":[' + b",".join(parts) + b"]}"

    async def record_exposures(self, body: bytes) -> int:
        """``POST /v1/exposures`` (the SDK's local mode): validate all, then write all."""
        config = self.config()
        try:
            request = self._decoders.exposures.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
            raise invalid_body(exc, body) from None
        if any(e.experiment not in config.served for e in request.exposures):
            # Maybe started a moment ago through another process: look once more.
            await self.cache.refresh()
            config = self.config()
        rows: list[ExposureRow] = []
        details: list[FieldError] = []
        for i, exposure in enumerate(request.exposures):
            row = _exposure_row(config, exposure, f"exposures.{i}", details)
            if row is not None:
                rows.append(row)
        if details:
            raise ValidationFailed(
                f"{len(details)} invalid exposure field(s); none was recorded",
                details[:_MAX_DETAILS],
            )
        await self.buffer.write(rows)
        return len(rows)


def _exposure_row(
    config: CompiledConfig, exposure: ExposureIn, where: str, details: list[FieldError]
) -> ExposureRow | None:
    before = len(details)
    key = exposure.experiment
    if key not in config.served:
        reason = "is a draft" if key in config.experiments else "does not exist"
        details.append(field_error(f"{where}.experiment", f"experiment {key!r} {reason}"))
    elif exposure.variant not in config.variants[key]:
        details.append(
            field_error(
                f"{where}.variant",
                f"{exposure.variant!r} is not a variant of {key!r}",
            )
        )
    try:
        unit_id = _unit_id(exposure.unit_id, f"{where}.unit_id")
    except ValidationFailed as exc:
        details.extend(exc.details)
    timestamp = epoch_seconds(exposure.timestamp)
    if timestamp is None:
        details.append(
            field_error(
                f"{where}.timestamp", f"must be ISO-8601 or epoch seconds {TIMESTAMP_RANGE}"
            )
        )
    if len(details) > before:
        return None
    assert timestamp is not None
    return (key, unit_id, exposure.variant, exposure.version, timestamp, exposure.attributes)


def _unknown(key: str, field: str) -> NotFound | ValidationFailed:
    if not _KEY.match(key):
        return ValidationFailed(
            "invalid request",
            [field_error(field, f"{key!r} is not an experiment key ({KEY_PATTERN})")],
        )
    return NotFound(f"experiment {key!r} does not exist")
