"""The body of ``POST /v1/models/{name}/reference``: a sample of training rows, by column.

::

    {"features": {"amount": [12.5, 3.0, null, ...], "is_new": [0, 1, 0, ...],
                  "region": [3, 1, 3, ...]},
     "label": [1, 0, 0, ...], "categorical": ["region"]}

Every feature column and the optional ``label`` hold one value per row: a finite
number, a boolean (0/1) or null (missing). Counts are checked before any value is
looked at: at most ``max_rows`` rows, at most ``MAX_COLUMNS`` columns, at most
``max_values`` values in all, every column as long as the first. ``categorical`` names
the features that hold category codes (not quantities). Each refusal is a 422 naming
the field (``features``, ``features.<name>``, ``label``, ``categorical.<i>``).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
import orjson

from service.errors import ValidationFailed, field_error

__all__ = ["MAX_COLUMNS", "MAX_ROWS", "REFERENCE_SCHEMA", "Parsed", "parse_reference"]

MAX_ROWS = 200_000
MAX_COLUMNS = 256
_NAME = re.compile(r"^.{1,64}$", re.DOTALL)

REFERENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["features"],
    "additionalProperties": False,
    "properties": {
        "features": {
            "type": "object",
            "description": "Feature name -> one value per row (number, boolean or null); "
            f"at most {MAX_COLUMNS} features, {MAX_ROWS:,} rows.",
            "maxProperties": MAX_COLUMNS,
            "additionalProperties": {
                "type": "array",
                "maxItems": MAX_ROWS,
                "items": {"type": ["number", "boolean", "null"]},
            },
        },
        "label": {
            "type": "array",
            "description": "Optional: the label of each row (number, boolean or null).",
            "maxItems": MAX_ROWS,
            "items": {"type": ["number", "boolean", "null"]},
        },
        "categorical": {
            "type": "array",
            "description": "Optional: features that hold category codes, not quantities.",
            "maxItems": MAX_COLUMNS,
            "items": {"type": "string"},
        },
    },
}


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed("invalid reference", [field_error(field, message)])


_KINDS = (int, float, bool, type(None))


def _column(values: list[Any], field: str) -> np.ndarray[Any, Any]:
    for i, v in enumerate(values):
        if type(v) not in _KINDS:
            raise _refuse(f"{field}.{i}", "must be a number, a boolean or null")
    out = np.array(values, dtype=np.float64)
    infinite = np.isinf(out)
    if infinite.any():
        raise _refuse(f"{field}.{int(np.argmax(infinite))}", "must be finite")
    return out


class Parsed(NamedTuple):
    columns: tuple[str, ...]
    rows: np.ndarray[Any, Any]
    """Rows x columns, NaN for null."""
    labels: np.ndarray[Any, Any] | None
    categorical: tuple[str, ...]


def parse_reference(raw: bytes, *, max_rows: int = MAX_ROWS, max_values: int = 4_000_000) -> Parsed:
    """The reference in a body (see the module docstring); 422 naming the field if invalid."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _refuse("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise _refuse("body", "must be a JSON object")
    unknown = sorted(set(body) - {"features", "label", "categorical"})
    if unknown:
        raise _refuse(unknown[0], "unknown field (expected features, label, categorical)")
    features = body.get("features")
    if not isinstance(features, dict) or not features:
        raise _refuse("features", "must be an object of feature name -> list of values")
    if len(features) > MAX_COLUMNS:
        raise _refuse("features", f"at most {MAX_COLUMNS} features")
    label = body.get("label")
    columns = tuple(features)
    lengths: list[int] = []
    for name in columns:
        if not _NAME.match(name):
            raise _refuse("features", "feature names are 1 to 64 characters")
        column = features[name]
        if not isinstance(column, list):
            raise _refuse(f"features.{name}", "must be a list (one value per row)")
        lengths.append(len(column))
    rows = lengths[0]
    if rows == 0:
        raise _refuse(f"features.{columns[0]}", "at least one row")
    if rows > max_rows:
        raise _refuse(f"features.{columns[0]}", f"at most {max_rows:,} rows")
    for name, n in zip(columns, lengths, strict=True):
        if n != rows:
            raise _refuse(f"features.{name}", f"has {n} values; the first feature has {rows}")
    if rows * (len(columns) + (label is not None)) > max_values:
        raise _refuse("features", f"at most {max_values:,} values in all (rows x features)")
    if label is not None and (not isinstance(label, list) or len(label) != rows):
        raise _refuse("label", f"must be a list of {rows} values (one per row)")
    categorical = _categorical(body.get("categorical"), columns)
    matrix = np.empty((rows, len(columns)))
    for j, name in enumerate(columns):
        matrix[:, j] = _column(features[name], f"features.{name}")
    labels = None if label is None else _column(label, "label")
    return Parsed(columns, matrix, labels, categorical)


def _categorical(value: Any, columns: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_COLUMNS:
        raise _refuse("categorical", "must be a list of feature names")
    for i, name in enumerate(value):
        if name not in columns:
            raise _refuse(f"categorical.{i}", "must name one of the features")
    return tuple(dict.fromkeys(value))
