"""Redis killed mid-stream (AOF, appendfsync always): 503 + Retry-After while down, and
nothing a 202 acknowledged is lost or counted twice once it is back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np

from service.embedded import EmbeddedRedis
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT, make_settings, running_app
from tests.ingest._helpers import (
    assert_same,
    batches,
    make_events,
    make_units,
    observed,
    read_cells,
    reference,
    spec,
    wait_drained,
)
from tests.ingest._processes import Sender, WorkerProcess


def test_redis_restart_loses_nothing_acknowledged(
    redis_server: EmbeddedRedis, redis_url: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    rng = np.random.default_rng(99)
    doc = spec("restart-exp")
    events = make_events(rng, "restart-exp", make_units(rng, 800), per_unit=(2, 8), integers=True)
    chunks = list(batches(events, 300))
    half = len(chunks) // 2
    settings = make_settings(redis_url)
    worker = WorkerProcess(
        {
            **server_env,
            "SHARPEN_AGGREGATOR_BLOCK_MS": "50",
            "SHARPEN_CONFIG_POLL_INTERVAL_S": "0.1",
        },
        tmp_path / "worker.log",
    )
    try:
        with running_app(settings) as http:
            assert http.post("/v1/experiments", json=doc, headers=ADMIN).status_code == 201
            assert http.post("/v1/experiments/restart-exp/start", headers=ADMIN).status_code == 200
            worker.start()
            # so that Redis dies under a working aggregator
            wait_for(worker.ready, what=f"the worker to start (log {worker.log})")
            first = Sender("", chunks[:half])
            first.send(http)
            redis_server.kill()
            key = uuid.uuid4().hex
            down = http.post(
                "/v1/events",
                json={"events": chunks[half]},
                headers={**CLIENT, "Idempotency-Key": key},
            )
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "1"
            assert down.json()["error"]["code"] == "unavailable"
            redis_server.start()
            # The SDK resends the refused batch with its key, then carries on.
            rest = Sender("", chunks[half:])
            rest.send(http)
        asyncio.run(wait_drained(settings, ["restart-exp"], limit_s=60))
        cells = asyncio.run(read_cells(settings, "restart-exp"))
    finally:
        worker.stop()
    assert sum(a["accepted"] for a in first.answers + rest.answers) == len(events)
    assert_same(observed(cells), reference(doc, events), exact=True)
