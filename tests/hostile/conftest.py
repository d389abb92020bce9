"""Hostile-input suite: each case attacks a live server and checks it stays responsive.

``health_probe`` measures ``/healthz`` latency from its own thread while an attack runs; a
case asserts on its p99 and that the probe saw no error. The bound is 200 ms, or five times
the p99 the same probe measured on the idle server just before the attack when the machine
itself is slower than that (a loaded CI box): a reference from the same run, so the check
judges the attack, not the machine. The stalls this suite guards against lasted seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._live import LiveServer
from tests.hostile._ingest import start

__all__ = ["HealthProbe"]


class HealthProbe:
    """Pings ``/healthz`` every ``interval_s`` on its own connection and keeps the latencies.

    ``path="/readyz"`` probes through Redis too (it PINGs it): for attacks on Redis itself.
    """

    def __init__(self, url: str, *, interval_s: float = 0.05, path: str = "/healthz") -> None:
        self._url = url
        self._path = path
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.latencies_s: list[float] = []
        self.idle_latencies_s: list[float] = []
        self.failures: list[str] = []

    def __enter__(self) -> HealthProbe:
        self._measure_idle()
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _measure_idle(self, probes: int = 25) -> None:
        """The same probe on the server before the attack: the run's own reference."""
        with httpx.Client(timeout=30.0) as http:
            http.get(f"{self._url}/healthz")  # untimed: connection set-up
            for _ in range(probes):
                started = time.perf_counter()
                http.get(f"{self._url}{self._path}")
                self.idle_latencies_s.append(time.perf_counter() - started)
                time.sleep(self._interval / 2)

    def _run(self) -> None:
        with httpx.Client(timeout=30.0) as http:
            # Untimed: the first request pays for the connection and the client's set-up.
            try:
                http.get(f"{self._url}/healthz")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = http.get(f"{self._url}{self._path}").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                else:
                    if status != 200:
                        self.failures.append(f"status {status}")
                self.latencies_s.append(time.perf_counter() - started)
                self._stop.wait(self._interval)

    def p99_ms(self) -> float:
        assert len(self.latencies_s) >= 20, f"too few probes to judge: {len(self.latencies_s)}"
        return _p99_ms(self.latencies_s)

    def assert_responsive(self, p99_limit_ms: float = 200.0) -> None:
        assert not self.failures, f"{self._path} failed during the attack: {self.failures[:5]}"
        p99 = self.p99_ms()
        idle = _p99_ms(self.idle_latencies_s) if self.idle_latencies_s else 0.0
        limit = max(p99_limit_ms, 5 * idle)
        assert p99 < limit, (
            f"{self._path} p99 {p99:.0f} ms during the attack (limit {limit:.0f} ms: "
            f"{p99_limit_ms:.0f} ms or 5x the idle p99 of {idle:.0f} ms; "
            f"{len(self.latencies_s)} probes, max {1000 * max(self.latencies_s):.0f} ms)"
        )


def _p99_ms(latencies_s: list[float]) -> float:
    ordered = sorted(latencies_s)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@pytest.fixture
def health_probe(live_server: LiveServer) -> Iterator[HealthProbe]:
    """A probe against the test's live server (start it with ``with health_probe:``)."""
    yield HealthProbe(live_server.url)


@pytest.fixture
def exp_http(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the live server, on which experiment ``exp`` runs (ingestion cases)."""
    with httpx.Client(base_url=live_server.url, timeout=120) as client:
        start(client, "exp")
        yield client


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "server.log"
