"""What the ingestion cases of the hostile suite share: an event, a running experiment, and
how many events Redis holds for it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis

from service.store import keys
from tests.conftest import ADMIN
from tests.ingest._helpers import spec

__all__ = ["event", "ingested", "start"]


def event(event_id: str, experiment: str = "exp", **changes: Any) -> dict[str, Any]:
    """A valid event (its unit named after its id), with ``changes``."""
    return {
        "event_id": event_id,
        "experiment": experiment,
        "unit_id": f"user-{event_id}",
        "variant": "candidate",
        "timestamp": time.time() - 5,
        "values": {"revenue": 1.0},
        **changes,
    }


def start(http: httpx.Client, key: str) -> None:
    """Create and start experiment ``key`` on the server ``http`` talks to."""
    assert http.post("/v1/experiments", json=spec(key), headers=ADMIN).status_code == 201
    assert http.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200


def ingested(redis_url: str, key: str = "exp") -> int:
    """Events Redis accepted for ``key`` (its aggregation counter, duplicates excluded)."""
    raw = redis.Redis.from_url(redis_url).hget(keys.aggregation_meta(key), "ingested")
    return int(raw or 0)
