"""An exposure flood to one experiment: another experiment's answers all have their exposures,
the flooder's excess is refused loudly (429/503 + Retry-After), and nothing answered
``in_experiment: true`` is dropped.

The server flushes once a second (``SHARPEN_EXPOSURE_FLUSH_INTERVAL_S=1``), so the flood
fills experiment A's share of the smallest buffer (20,000: A may hold 10,000) within each
second whatever the machine's speed: the limit is reached for sure, in a few seconds.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis

from service.store import keys
from tests._live import LiveServer
from tests._wait import wait_for
from tests.assignment._helpers import launch
from tests.conftest import CLIENT
from tests.hostile.conftest import HealthProbe

FLOOD_THREADS = 4
BATCH = 1000
B_CALLS = 300


@pytest.fixture
def server_env(server_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield {
        **server_env,
        "SHARPEN_EXPOSURE_FLUSH_INTERVAL_S": "1",
        "SHARPEN_EXPOSURE_BUFFER_MAX": "20000",
    }


def _flood(url: str, thread: int, stop: Any, inside: set[str], refusals: list[Any]) -> None:
    n = 0
    with httpx.Client(base_url=url, headers=CLIENT, timeout=30) as http:
        while not stop.is_set():
            units = [f"a{thread}-{n + i}" for i in range(BATCH)]
            n += BATCH
            body = orjson.dumps({"experiment": "flood-a", "units": [{"unit_id": u} for u in units]})
            response = http.post("/v1/assign/batch", content=body)
            if response.status_code != 200:
                refusals.append((response.status_code, response.headers.get("retry-after")))
                continue
            got = orjson.loads(response.content)["assignments"]
            inside.update(u for u, x in zip(units, got, strict=True) if x["in_experiment"])


def flood_process(url: str, stop: Any, answered: Any, refused: Any, out: Any) -> None:
    """The flood, in a process of its own (so that its Python work does not slow the test's
    /healthz probe): FLOOD_THREADS threads until ``stop``; then (answered in, refusals)."""
    inside: set[str] = set()
    refusals: list[tuple[int, str | None]] = []

    def report() -> None:
        while not stop.wait(0.05):
            answered.value, refused.value = len(inside), len(refusals)

    threads = [
        threading.Thread(target=_flood, args=(url, t, stop, inside, refusals))
        for t in range(FLOOD_THREADS)
    ]
    threads.append(threading.Thread(target=report))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((sorted(inside), refusals))


def _stream_units(r: redis.Redis, key: str) -> set[str]:
    entries: Any = r.xrange(keys.exposures_stream(key))
    return {fields["unit_id"] for _, fields in entries}


def test_a_flood_to_one_experiment_loses_nothing_of_another(
    live_server: LiveServer, health_probe: HealthProbe, redis_sync: redis.Redis
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as admin:
        launch(admin, "flood-a")
        launch(admin, "flood-b")
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    answered, refused = context.Value("q", 0), context.Value("q", 0)
    flood = context.Process(
        target=flood_process, args=(live_server.url, stop, answered, refused, out)
    )
    b_inside: set[str] = set()
    b_statuses: dict[int, int] = {}
    with health_probe:
        flood.start()
        try:
            with httpx.Client(base_url=live_server.url, headers=CLIENT, timeout=30) as http:
                for i in range(B_CALLS):
                    response = http.post(
                        "/v1/assign", json={"experiment": "flood-b", "unit_id": f"b-{i}"}
                    )
                    b_statuses[response.status_code] = b_statuses.get(response.status_code, 0) + 1
                    if response.status_code == 200 and response.json()["in_experiment"]:
                        b_inside.add(f"b-{i}")
            # Keep flooding until A has hit its share (refused, or answered well over the
            # whole buffer), and /healthz was probed enough to judge.
            wait_for(
                lambda: (
                    (refused.value or answered.value > 40_000)
                    and len(health_probe.latencies_s) >= 40
                ),
                what="A's flood over its share and 40 health probes",
            )
        finally:
            stop.set()
            inside, refusals = out.get(timeout=60)
            flood.join(timeout=60)
    a_inside = set(inside)
    assert live_server.stop() == 0  # graceful: everything admitted is written

    # B was never refused: a flood to A cannot take B's share.
    assert b_statuses == {200: B_CALLS} and len(b_inside) == B_CALLS
    assert b_inside <= _stream_units(redis_sync, "flood-b")
    # A's excess was refused loudly, and whatever A was answered "in" was written.
    assert refusals and all(
        status in (429, 503) and retry_after is not None for status, retry_after in refusals
    ), refusals[:5]
    written_a = _stream_units(redis_sync, "flood-a")
    assert len(a_inside) >= BATCH and not a_inside - written_a, len(a_inside - written_a)
    health_probe.assert_responsive()
