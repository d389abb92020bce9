"""Ingestion of outcome events: decode a batch (bounded, msgspec), check each event against
its experiment, append the valid ones exactly once, answer (``POST /v1/events``)."""

from __future__ import annotations

from service.ingestion._decode import VALUE_LIMIT
from service.ingestion._ingest import add_ingestion, ingest

__all__ = ["VALUE_LIMIT", "add_ingestion", "ingest"]
