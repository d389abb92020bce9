"""Ingestion of outcome events: decode a batch (bounded, msgspec), check each event against
its experiment, append the valid ones exactly once, answer (``POST /v1/events``)."""

from __future__ import annotations

from service.ingestion._checks import Targets
from service.ingestion._decode import VALUE_LIMIT
from service.ingestion._ingest import ingest

__all__ = ["VALUE_LIMIT", "Targets", "ingest"]
