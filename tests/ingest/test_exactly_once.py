"""Exactly once: workers killed with SIGKILL again and again, retried events, same statistics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from tests.conftest import ADMIN, make_settings, running_app
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
from tests.ingest._processes import Killer, Sender, WorkerProcess

UNITS = 3000
BATCH = 500
DUPLICATE_SHARE = 0.1


def _with_duplicates(
    events: list[dict[str, object]], rng: np.random.Generator
) -> tuple[list[list[dict[str, object]]], int]:
    """Batches of the unique events plus ~10% re-sent events (same id, same timestamp)."""
    out: list[list[dict[str, object]]] = []
    sent: list[dict[str, object]] = []
    duplicates = 0
    for chunk in batches(events, BATCH):
        extra = []
        if sent:
            picks = rng.choice(len(sent), size=int(len(chunk) * DUPLICATE_SHARE), replace=False)
            extra = [sent[int(i)] for i in picks]
        duplicates += len(extra)
        sent += chunk
        mixed = chunk + extra
        order = rng.permutation(len(mixed))
        out.append([mixed[int(i)] for i in order])
    return out, duplicates


def test_sigkilled_workers_neither_lose_nor_double_count(
    redis_url: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    worker_env = {
        **server_env,
        "SHARPEN_AGGREGATOR_CLAIM_IDLE_MS": "300",
        "SHARPEN_AGGREGATOR_BLOCK_MS": "50",
        "SHARPEN_AGGREGATOR_BATCH_ENTRIES": "3",
        "SHARPEN_CONFIG_POLL_INTERVAL_S": "0.1",
    }
    rng = np.random.default_rng(2024)
    doc = spec("crash-exp")
    events = make_events(rng, "crash-exp", make_units(rng, UNITS), per_unit=(5, 15), integers=True)
    sends, duplicates = _with_duplicates(events, rng)
    settings = make_settings(redis_url)
    workers = [WorkerProcess(worker_env, tmp_path / f"worker{i}.log") for i in range(2)]
    killer = Killer(workers, min_kills=8, seed=5)
    sender = Sender("", sends, replay_every=7, pause_s=0.05)
    try:
        with running_app(settings) as http:
            assert http.post("/v1/experiments", json=doc, headers=ADMIN).status_code == 201
            assert http.post("/v1/experiments/crash-exp/start", headers=ADMIN).status_code == 200
            for w in workers:
                w.start()
            killer.start()
            sender.send(http)
        killer.stop()
        killer.join()
        asyncio.run(wait_drained(settings, ["crash-exp"], limit_s=120))
        cells = asyncio.run(read_cells(settings, "crash-exp"))
    finally:
        killer.stop()
        for w in workers:
            w.stop()

    # Every unique event accepted once, every retried one reported as a duplicate ...
    assert sum(a["accepted"] for a in sender.answers) == len(events)
    assert sum(a["duplicates"] for a in sender.answers) == duplicates
    # ... a replayed request (same Idempotency-Key) got the first answer ...
    assert sender.replays and all(first == again for first, again in sender.replays)
    # ... and the statistics are exactly those of the unique events.
    assert_same(observed(cells), reference(doc, events), exact=True)
