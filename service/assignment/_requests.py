"""Request bodies of the assignment endpoints, decoded with msgspec (not pydantic).

Decoding validates types and bounds in C; :func:`invalid_body` turns a msgspec
error into the service's 422 naming the field (``units.3.unit_id``).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final

import msgspec

from service.errors import ValidationFailed, field_error
from sharpen import MAX_UNIT_ID

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_BATCH",
    "MAX_EXPOSURES",
    "MAX_UNIT_ID",
    "AssignRequest",
    "BatchRequest",
    "BatchUnit",
    "Decoders",
    "ExposureIn",
    "ExposuresRequest",
    "invalid_body",
]

MAX_BATCH: Final = 1000
MAX_EXPOSURES: Final = 10_000
MAX_ATTRIBUTES: Final = 64
MAX_ATTRIBUTE_NAME: Final = 128

# Integers beyond 64 bits cannot be stored (orjson refuses them): refused here, by field.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Scalar = str | Int64 | float | bool | None
Attributes = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=MAX_ATTRIBUTE_NAME)], Scalar],
    msgspec.Meta(max_length=MAX_ATTRIBUTES),
]
UnitId = str | int


class AssignRequest(msgspec.Struct, forbid_unknown_fields=True):
    experiment: str
    unit_id: UnitId
    attributes: Attributes | None = None


class BatchUnit(msgspec.Struct, forbid_unknown_fields=True):
    unit_id: UnitId
    attributes: Attributes | None = None


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    experiment: str
    units: Annotated[list[BatchUnit], msgspec.Meta(max_length=MAX_BATCH)]


class ExposureIn(msgspec.Struct, forbid_unknown_fields=True):
    experiment: str
    unit_id: UnitId
    variant: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    version: Annotated[int, msgspec.Meta(ge=1)]
    timestamp: str | float
    attributes: Attributes | None = None


class ExposuresRequest(msgspec.Struct, forbid_unknown_fields=True):
    exposures: Annotated[list[ExposureIn], msgspec.Meta(max_length=MAX_EXPOSURES)]


class Decoders:
    """One decoder per body type, built once per app."""

    __slots__ = ("assign", "batch", "exposures")

    def __init__(self) -> None:
        self.assign = msgspec.json.Decoder(AssignRequest)
        self.batch = msgspec.json.Decoder(BatchRequest)
        self.exposures = msgspec.json.Decoder(ExposuresRequest)


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_NAMED = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`")


def _steps(path: str) -> list[str | int | None]:
    """``.units[3].attributes[...]`` → ``["units", 3, "attributes", None]`` (None: a dict key)."""
    steps: list[str | int | None] = []
    for name, index in _STEP.findall(path):
        if name:
            steps.append(name)
        elif index == "...":
            steps.append(None)
        else:
            steps.append(int(index))
    return steps


def _bad_key(body: bytes, steps: list[str | int | None]) -> str | None:
    """Which key of the object at ``steps`` holds a bad value (msgspec does not say)."""
    try:
        node: Any = json.loads(body)  # not orjson: it reads integers beyond 64 bits as floats
        for step in steps:
            node = node[step]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return None
    if not isinstance(node, dict):
        return None
    for key, value in node.items():
        scalar = value is None or isinstance(value, str | float | bool)
        if isinstance(value, int) and not isinstance(value, bool):
            scalar = -(2**63) <= value < 2**63
        if not scalar or len(key) > MAX_ATTRIBUTE_NAME:
            return str(key)
    return None


def invalid_body(exc: msgspec.DecodeError | UnicodeDecodeError, body: bytes) -> ValidationFailed:
    """The 422 for a body msgspec refused, naming the field at fault."""
    if not isinstance(exc, msgspec.ValidationError):
        return ValidationFailed("invalid request", [field_error("body", "body is not valid JSON")])
    match = _AT.match(str(exc))
    message = match.group("message") if match else str(exc)
    steps = _steps(match.group("path") or "") if match else []
    if steps and steps[-1] is None:
        key = _bad_key(body, steps[:-1])
        steps = steps[:-1] + ([key] if key is not None else [])
    named = _NAMED.match(message)
    if named:
        steps.append(named.group("name"))
    field = ".".join(str(s) for s in steps) or "body"
    return ValidationFailed("invalid request", [field_error(field, message)])
