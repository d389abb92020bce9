"""The HTTP contract with the service: paths, headers and body shapes."""

from __future__ import annotations

import functools
import json
import math
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, Final

from sharpen._canonical import MAX_UNIT_ID, canonical
from sharpen._exceptions import InvalidEventError
from sharpen._models import Assignment, freeze

__all__ = [
    "ASSIGN_PATH",
    "CONFIG_PATH",
    "EVENTS_PATH",
    "EXPOSURES_PATH",
    "ExposureRecord",
    "assign_body",
    "auth_headers",
    "event_body",
    "exposure_content",
    "iso_timestamp",
    "json_text",
    "parse_assign_response",
    "parse_timestamp",
]

CONFIG_PATH: Final = "/v1/config"
ASSIGN_PATH: Final = "/v1/assign"
EVENTS_PATH: Final = "/v1/events"
EXPOSURES_PATH: Final = "/v1/exposures"

ExposureRecord = tuple[str, str, str, int, float, Mapping[str, object] | None]
"""``(experiment, unit_id, variant, version, epoch seconds, attributes)``, cheap to queue.

The attributes travel with the exposure because the analysis fixes a unit's segments
when it enters, and a unit enters at its first exposure."""

_SCALARS = (str, int, float, bool)


def _scalar_attributes(attributes: Mapping[str, object]) -> dict[str, object]:
    # Segments are scalars; anything else would make the service refuse the whole batch.
    return {str(k): v for k, v in attributes.items() if v is None or isinstance(v, _SCALARS)}


def auth_headers(api_key: str, user_agent: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": user_agent}


@functools.lru_cache(maxsize=256)
def _second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def iso_timestamp(epoch_seconds: float) -> str:
    """ISO-8601 UTC with millisecond precision and a ``Z``: ``2024-05-01T12:00:00.123Z``."""
    # Uploads format thousands of these per second, mostly within the same
    # second: the date-time part is cached per second.
    millis = math.floor(epoch_seconds * 1000.0)
    second, milli = divmod(millis, 1000)
    return f"{_second(second)}.{milli:03d}Z"


def exposure_content(records: list[ExposureRecord]) -> bytes:
    """The ``POST /v1/exposures`` body of ``records``, encoded.

    Written as JSON text directly (the fixed fields formatted, the strings quoted by the
    json module's C escaper, each experiment and variant once): the upload's CPU is
    charged to the process that assigns, so it is kept to one format per row.
    """
    rows: list[str] = []
    append = rows.append
    quoted: dict[str, str] = {}
    last_second, prefix = None, ""
    for experiment, unit_id, variant, version, ts, attributes in records:
        second, milli = divmod(math.floor(ts * 1000.0), 1000)
        if second != last_second:
            last_second, prefix = second, _second(second)
        exp = quoted.get(experiment)
        if exp is None:
            exp = quoted[experiment] = _quote(experiment)
        arm = quoted.get(variant)
        if arm is None:
            arm = quoted[variant] = _quote(variant)
        row = (
            f'{{"experiment":{exp},"unit_id":{_quote(unit_id)},"variant":{arm},'
            f'"version":{int(version)},"timestamp":"{prefix}.{milli:03d}Z"'
        )
        if attributes:
            row += ',"attributes":' + json_text(_scalar_attributes(attributes))
        append(row + "}")
    return ('{"exposures":[' + ",".join(rows) + "]}").encode()


def json_text(value: object) -> str:
    """Compact JSON, as httpx's ``json=`` writes it (NaN and infinities refused)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def assign_body(
    experiment: str, unit_id: str, attributes: Mapping[str, object] | None
) -> dict[str, Any]:
    return {"experiment": experiment, "unit_id": unit_id, "attributes": dict(attributes or {})}


def parse_assign_response(body: object, experiment: str) -> Assignment:
    """The :class:`Assignment` in a ``POST /v1/assign`` answer (``ValueError`` if malformed)."""
    if not isinstance(body, Mapping):
        raise ValueError("assign response is not an object")
    variant = body.get("variant")
    payload = body.get("payload") or {}
    in_experiment = body.get("in_experiment")
    reason = body.get("reason")
    if variant is not None and not isinstance(variant, str):
        raise ValueError(f"assign response: variant {variant!r} is not a string")
    if not isinstance(payload, Mapping):
        raise ValueError("assign response: payload is not an object")
    if not isinstance(in_experiment, bool):
        raise ValueError("assign response: in_experiment is not a boolean")
    if not isinstance(reason, str):
        raise ValueError("assign response: reason is not a string")
    returned = body.get("experiment", experiment)
    if returned != experiment:
        raise ValueError(f"assign response is for experiment {returned!r}")
    return Assignment(experiment, variant, freeze(payload), in_experiment, reason)


# --- outcome events ---------------------------------------------------------


def _numbers(field: str, values: object, *, allow_empty: bool) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise InvalidEventError("must be a mapping of name -> number", field=field)
    if not values and not allow_empty:
        raise InvalidEventError("must hold at least one value", field=field)
    out: dict[str, float] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise InvalidEventError(f"name {name!r} is not a non-empty string", field=field)
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidEventError(f"{name!r} = {value!r} is not a finite number", field=field)
        out[name] = value
    return out


def _non_finite(value: object) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def parse_timestamp(value: object) -> tuple[float, str]:
    """Epoch seconds and the ISO-8601 text of a datetime (naive = UTC), epoch seconds or an
    ISO-8601 string; ``None`` is now. Raises :class:`InvalidEventError` for anything else."""
    if value is None:
        seconds = datetime.now(UTC).timestamp()
        return seconds, iso_timestamp(seconds)
    if isinstance(value, datetime):
        # A naive datetime is taken as UTC: servers log in UTC.
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        seconds = moment.timestamp()
        return seconds, iso_timestamp(seconds)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value), iso_timestamp(float(value))
    if isinstance(value, str):
        try:
            return parse_timestamp(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise InvalidEventError(
        f"{value!r} is not a datetime, epoch seconds or ISO-8601 string", field="timestamp"
    )


def _timestamp(value: object) -> str:
    return parse_timestamp(value)[1]


def event_body(
    *,
    experiment: str,
    unit_id: object,
    values: object,
    variant: str | None,
    attributes: Mapping[str, object] | None,
    timestamp: object,
    event_id: str | None,
    covariates: object,
) -> dict[str, Any]:
    """One validated event of a ``POST /v1/events`` body; raises :class:`InvalidEventError`."""
    if not isinstance(experiment, str) or not experiment:
        raise InvalidEventError(f"{experiment!r} is not a non-empty string", field="experiment")
    unit = canonical(unit_id)
    if not unit:
        raise InvalidEventError(f"{unit_id!r} is not a non-empty id", field="unit_id")
    if len(unit) > MAX_UNIT_ID:
        raise InvalidEventError(
            f"{len(unit)} characters; at most {MAX_UNIT_ID} (sharpen.MAX_UNIT_ID)", field="unit_id"
        )
    if event_id is None:
        event_id = uuid.uuid4().hex
    elif not isinstance(event_id, str) or not event_id:
        raise InvalidEventError(f"{event_id!r} is not a non-empty string", field="event_id")
    if variant is not None and not isinstance(variant, str):
        raise InvalidEventError(f"{variant!r} is not a string", field="variant")
    attrs: dict[str, object] = {}
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            raise InvalidEventError("must be a mapping", field="attributes")
        for name, value in attributes.items():
            if value is not None and (canonical(value) is None or _non_finite(value)):
                raise InvalidEventError(f"{name!r} = {value!r} is not a scalar", field="attributes")
            attrs[str(name)] = value
    event: dict[str, Any] = {
        "event_id": event_id,
        "experiment": experiment,
        "unit_id": unit,
        "variant": variant,
        "timestamp": _timestamp(timestamp),
        "values": _numbers("values", values, allow_empty=False),
        "attributes": attrs,
    }
    if covariates is not None:
        event["covariates"] = _numbers("covariates", covariates, allow_empty=True)
    return event
