"""Historical records for a backtest: flat rows (CSV, Parquet) into the nested shape.

Nested shape (JSON)::

    {"record_id": "r1", "timestamp": "2024-05-01T10:00:00Z", "label": 1,
     "attributes": {"country": "US"},
     "variants": {"baseline": {"prediction": 0, "confidence": 0.7, "values": {"latency_ms": 40}},
                  "candidate": {"prediction": 1, "confidence": 0.8, "values": {"latency_ms": 45}}}}

Flat rows (CSV columns, Parquet fields): ``record_id``, ``timestamp``, ``label``,
``<variant>.prediction``, ``<variant>.confidence``, ``<variant>.<value>`` for any
other per-variant value; every other column is an attribute. Empty cells are absent.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TOP = ("record_id", "timestamp", "label")


def cell(value: Any) -> Any:
    """A CSV cell as the JSON value it spells: int, float, bool or the string itself."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def rows_from_csv(text: str) -> list[dict[str, str]]:
    """Rows of a CSV document with a header line."""
    return list(csv.DictReader(io.StringIO(text)))


def nest_rows(rows: Sequence[Mapping[str, Any]], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Flat rows into nested records (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        record: dict[str, Any] = {"attributes": {}, "variants": {}}
        for column, raw in row.items():
            if raw is None or raw == "" or column is None:
                continue
            head, dot, field = column.partition(".")
            if column in _TOP:
                record[column] = raw if column == "record_id" else cell(raw)
            elif dot and head in variants:
                arm = record["variants"].setdefault(head, {})
                if field in ("prediction", "confidence"):
                    arm[field] = cell(raw)
                else:
                    arm.setdefault("values", {})[field] = cell(raw)
            else:
                record["attributes"][column] = str(raw)
        out.append(record)
    return out
