"""The SDK's golden vectors, run through the service's code path (compile, decode, evaluate,
encode, exposure queue) rather than through the SDK directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio

from service.assignment import Assigner, ExposureBuffer, StaticConfig, compile_entries
from service.errors import ValidationFailed
from service.store.exposures import ExposureLog

GOLDEN = Path(__file__).resolve().parent.parent / "spec" / "hashing.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())["evaluation_cases"]


def _assigner(entry: dict[str, Any], redis_url: str) -> tuple[Assigner, ExposureBuffer]:
    client = redis.asyncio.Redis.from_url(redis_url)  # never used: the buffer is not started
    buffer = ExposureBuffer(ExposureLog(client), flush_interval_s=0.01, max_pending=1000)
    config = compile_entries([entry], version=1)
    return Assigner(StaticConfig(config), buffer), buffer


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case_through_the_service(case: dict[str, Any], redis_url: str) -> None:
    entry = case["experiment"]
    assigner, buffer = _assigner(entry, redis_url)
    body: dict[str, Any] = {"experiment": entry["key"], "unit_id": case["unit_id"]}
    if case["attributes"] is not None:
        body["attributes"] = case["attributes"]
    raw = orjson.dumps(body)
    if case["reason"] == "invalid_unit":
        # The service refuses an empty or too long id (422) where the SDK serves the baseline.
        with pytest.raises(ValidationFailed) as refused:
            assigner.assign(raw)
        assert refused.value.details[0]["field"] == "unit_id"
        return
    got = orjson.loads(assigner.assign(raw))
    assert got == {
        "experiment": entry["key"],
        "variant": case["variant"],
        "payload": case["payload"],
        "in_experiment": case["in_experiment"],
        "reason": case["reason"],
    }
    # Exactly the units in the experiment are queued as exposures.
    assert buffer.stats().accepted == (1 if case["in_experiment"] else 0)

    batch = orjson.dumps(
        {
            "experiment": entry["key"],
            "units": [{k: v for k, v in body.items() if k != "experiment"}],
        }
    )
    assert orjson.loads(assigner.assign_batch(batch)) == {"assignments": [got]}


def test_every_golden_case_is_covered() -> None:
    reasons = {c["reason"] for c in CASES}
    assert {"assigned", "shipped", "rolled_back", "stopped", "not_running"} <= reasons
    assert {"targeting", "layer", "holdout", "traffic"} <= reasons
