"""Model logs: predictions (``POST /v1/models/{name}/records``) and late labels (``/labels``).

The checks here mirror the service's, so that what :meth:`Client.log_prediction` queues is
what the service keeps: a record the service would refuse is refused here instead (counted
and logged once per kind, never raised), because the service refuses a whole batch for one
bad record.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any, Final

from sharpen._canonical import canonical
from sharpen._exceptions import InvalidEventError
from sharpen._wire import parse_timestamp

__all__ = [
    "MAX_RECORD_ID",
    "ModelItem",
    "label_item",
    "prediction_item",
]

MAX_RECORD_ID: Final = 128
_MODEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MAX_NAME: Final = 64
_MAX_STRING: Final = 256
_MAX_ATTRIBUTES: Final = 32
_MAX_FEATURES: Final = 256
_EARLIEST: Final = 946_684_800.0  # 2000-01-01T00:00:00Z
_FUTURE_S: Final = 86_400.0

ModelItem = tuple[str, dict[str, Any]]
"""``(model, one record or label of its body)``, as queued."""


def _model(model: object) -> str:
    if not isinstance(model, str) or not _MODEL.match(model):
        raise InvalidEventError(
            f"{model!r} is not a model name (lowercase letters, digits, - and _; at most 64)",
            field="model",
        )
    return model


def _record_id(record_id: object) -> str:
    text = canonical(record_id) if not isinstance(record_id, bool) else None
    if not text:
        raise InvalidEventError(f"{record_id!r} is not a non-empty id", field="record_id")
    if len(text) > MAX_RECORD_ID:
        raise InvalidEventError(
            f"{len(text)} characters; at most {MAX_RECORD_ID}", field="record_id"
        )
    return text


def _scalar(value: object, field: str) -> object:
    """A prediction, label or attribute value as the service takes it."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise InvalidEventError(f"{value!r} is not a finite number", field=field)
    if isinstance(value, str):
        if len(value) <= _MAX_STRING:
            return value
        raise InvalidEventError(f"{len(value)} characters; at most {_MAX_STRING}", field=field)
    raise InvalidEventError(
        f"{type(value).__name__} is not a string, number, boolean or None", field=field
    )


def _name(name: object, field: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME:
        raise InvalidEventError(f"name {name!r} is not a string of 1 to 64 characters", field=field)
    return name


def _attributes(attributes: object) -> dict[str, object]:
    if not isinstance(attributes, Mapping):
        raise InvalidEventError("must be a mapping", field="attributes")
    out: dict[str, object] = {}
    for name, value in attributes.items():
        if value is None:
            continue  # the service takes a missing attribute as missing, not null
        out[_name(name, "attributes")] = _scalar(value, f"attributes.{name}")
    if len(out) > _MAX_ATTRIBUTES:
        raise InvalidEventError(
            f"{len(out)} attributes; at most {_MAX_ATTRIBUTES}", field="attributes"
        )
    return out


def _features(features: object) -> dict[str, float | None]:
    if not isinstance(features, Mapping):
        raise InvalidEventError("must be a mapping of name -> number or None", field="features")
    if len(features) > _MAX_FEATURES:
        raise InvalidEventError(
            f"{len(features)} features; at most {_MAX_FEATURES}", field="features"
        )
    out: dict[str, float | None] = {}
    for name, value in features.items():
        key = _name(name, "features")
        if value is None:
            out[key] = None
        elif isinstance(value, int | float) and math.isfinite(value):
            out[key] = float(value)
        else:
            raise InvalidEventError(
                f"{name!r} = {value!r} is not a finite number", field="features"
            )
    return out


def _when(timestamp: object) -> str:
    seconds, text = parse_timestamp(timestamp)
    if not _EARLIEST <= seconds <= time.time() + _FUTURE_S:
        raise InvalidEventError(
            f"{text} is not between 2000-01-01 and one day from now", field="timestamp"
        )
    return text


def prediction_item(
    model: object,
    record_id: object,
    prediction: object,
    *,
    confidence: object,
    features: object,
    attributes: object,
    offline_prediction: object,
    timestamp: object,
) -> ModelItem:
    """One validated record of a records body; raises :class:`InvalidEventError`."""
    name = _model(model)
    record: dict[str, Any] = {
        "record_id": _record_id(record_id),
        "timestamp": _when(timestamp),
        "prediction": _scalar(prediction, "prediction"),
    }
    if offline_prediction is not None:
        record["offline_prediction"] = _scalar(offline_prediction, "offline_prediction")
    if confidence is not None:
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not 0.0 <= confidence <= 1.0
        ):
            raise InvalidEventError(f"{confidence!r} is not within [0, 1]", field="confidence")
        record["confidence"] = float(confidence)
    if features is not None:
        record["features"] = _features(features)
    if attributes is not None:
        record["attributes"] = _attributes(attributes)
    return name, record


def label_item(model: object, record_id: object, label: object) -> ModelItem:
    """One validated entry of a labels body; raises :class:`InvalidEventError`."""
    name = _model(model)
    if label is None:
        raise InvalidEventError("a label cannot be None", field="label")
    return name, {"record_id": _record_id(record_id), "label": _scalar(label, "label")}
