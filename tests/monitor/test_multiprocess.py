"""Several uvicorn workers: with PROMETHEUS_MULTIPROC_DIR every worker's /metrics serves
the sum over all of them, and experiment series (from Redis) are the same everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests._factories import guarded_spec
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "sharpen_http_requests_total" and s.labels.get("route") == "/healthz":
                return s.value
    return 0.0


def test_two_workers_serve_the_same_totals(server_env: dict[str, str], tmp_path: Path) -> None:
    directory = tmp_path / "prometheus-multiproc"
    directory.mkdir()
    args = [
        sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", "{port}", "--workers", "2", "--log-level", "warning",
    ]  # fmt: skip
    env = {**server_env, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    server = LiveServer(env, args=args, log=tmp_path / "server.log").start(timeout_s=120)
    try:
        with httpx.Client(base_url=server.url) as client:
            assert client.post("/v1/experiments", json=guarded_spec(), headers=ADMIN).is_success
            for _ in range(40):  # a new connection each: the workers share them out
                assert httpx.get(f"{server.url}/healthz").status_code == 200

        # Every scrape, whichever worker answers, counts all 40 (plus the first one's own
        # startup probes) once each worker merged its request table (within FLUSH_AFTER_S),
        # and shows the experiment stored in Redis.
        def agreeing_scrapes() -> list[str] | None:
            scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(6)]
            counts = [_healthz_count(text) for text in scrapes]
            return scrapes if min(counts) >= 40 and len(set(counts)) == 1 else None

        scrapes = wait_for(agreeing_scrapes, what="every worker's scrape to count 40 requests")
        assert all('sharpen_experiment_status{experiment="fraud-v7",status="draft"} 1.0' in t
                   for t in scrapes)  # fmt: skip
        counted = {
            path.name
            for path in directory.glob("counter_*.db")
            for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
            if '"/healthz"' in key and key.startswith('["sharpen_http_requests"') and value > 0
        }
        assert len(counted) == 2, counted  # both workers served some, and they add up
    finally:
        server.stop()
