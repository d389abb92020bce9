"""``sharpen serve --workers 2``: two API processes on one port, each with its own exposure
buffer and config feed; every exposure written exactly once, and ``/metrics`` on either
worker sums both (prometheus-client's multiprocess mode, in a directory the CLI manages)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from service.store import keys
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT

SPEC = {
    "key": "two-workers",
    "variants": [
        {"key": "baseline", "weight": 50, "payload": {"model": "v6"}},
        {"key": "candidate", "weight": 50, "payload": {"model": "v7"}},
    ],
    "baseline": "baseline",
    "metrics": [
        {"name": "conv", "kind": "proportion", "value": "converted", "role": "primary", "mde": 0.05}
    ],
}


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_two_workers_write_each_exposure_once_and_sum_their_metrics(
    server_env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    args = [sys.executable, "-m", "service.cli", "serve", "--workers", "2", "--port", "{port}"]
    server = LiveServer(
        {**server_env, "SHARPEN_LOG_LEVEL": "warning"}, args=args, log=tmp_path / "serve.log"
    )
    server.env = {**env, **server_env}
    server.start(timeout_s=120)
    stream = keys.exposures_stream(SPEC["key"])  # type: ignore[arg-type]
    store = redis.Redis.from_url(redis_url)
    exposed = 0
    answered = 0
    workers: set[str] = set()
    try:
        url = server.url
        assert httpx.post(f"{url}/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
        assert httpx.post(f"{url}/v1/experiments/two-workers/start", headers=ADMIN).is_success

        def assign(unit: str) -> bool:
            nonlocal exposed, answered
            body = {"experiment": "two-workers", "unit_id": unit}
            answer = httpx.post(f"{url}/v1/assign", json=body, headers=CLIENT)  # new connection
            assert answer.status_code == 200, answer.text
            answered += 1
            workers.add(answer.headers["x-request-id"][:10])  # a per-process prefix
            exposed += answer.json()["in_experiment"]
            return bool(answer.json()["in_experiment"])

        # Each worker's config feed sees the start: a run of answers all in the experiment.
        wait_for(
            lambda: all(assign(f"probe-{exposed}-{i}") for i in range(10)),
            what="both workers to serve the running experiment",
        )
        for i in range(200):
            assign(f"unit-{i}")
        assert len(workers) == 2, workers  # both workers answered some
        wait_for(lambda: store.xlen(stream) == exposed, what=f"{exposed} exposures written")

        def summed() -> bool:
            for _ in range(4):  # whichever worker answers the scrape
                text = httpx.get(f"{url}/metrics").text
                labels = {"route": "/v1/assign", "method": "POST", "status": "200"}
                if _sample(text, "sharpen_http_requests_total", labels) != answered:
                    return False
                if _sample(text, "sharpen_assignments_total", {"experiment": "two-workers"}) != (
                    exposed
                ):
                    return False
            return True

        wait_for(summed, what="every scrape to sum both workers' requests and assignments")
    finally:
        code = server.stop()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert store.xlen(stream) == exposed  # graceful stop: nothing lost, nothing twice
    store.close()
