"""Real processes for the crash tests: ``sharpen worker`` subprocesses and an SDK-like sender."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.conftest import CLIENT

SHARPEN = str(Path(sys.executable).parent / "sharpen")


class WorkerProcess:
    """One ``sharpen worker`` child; ``ready`` once it logged that the aggregator started."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._mark = 0
        self.ready_at: float | None = None

    def start(self) -> None:
        self._mark = self.log.stat().st_size if self.log.exists() else 0
        self.ready_at = None
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [SHARPEN, "worker", "--log-level", "info"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        if self.ready_at is None:
            with self.log.open("rb") as f:
                f.seek(self._mark)
                if b" started" in f.read():
                    self.ready_at = time.monotonic()
        return self.ready_at is not None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Sender(threading.Thread):
    """Posts batches like the SDK: one Idempotency-Key per batch, kept across retries, and
    retries 503s and connection errors after ``Retry-After`` (capped). Records every answer.

    Runs as a thread against ``url``, or in the caller's thread with ``send(client)``.
    """

    def __init__(
        self,
        url: str,
        batches: Sequence[list[dict[str, Any]]],
        *,
        replay_every: int = 0,
        pause_s: float = 0.0,
    ) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.batches = batches
        self.replay_every = replay_every
        self.pause_s = pause_s
        self.answers: list[dict[str, int]] = []
        self.replays: list[tuple[dict[str, int], dict[str, int]]] = []
        self.unavailable = 0
        self.error: BaseException | None = None

    def _post(
        self, http: httpx.Client | TestClient, events: list[dict[str, Any]], key: str
    ) -> dict[str, int]:
        while True:
            try:
                response = http.post(
                    "/v1/events",
                    json={"events": events},
                    headers={**CLIENT, "Idempotency-Key": key},
                )
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if response.status_code == 202:
                answer: dict[str, int] = response.json()
                return answer
            if response.status_code == 503:
                assert response.headers.get("retry-after"), response.headers
                self.unavailable += 1
                time.sleep(min(float(response.headers["retry-after"]), 0.2))
                continue
            raise AssertionError(f"{response.status_code}: {response.text[:500]}")

    def send(self, http: httpx.Client | TestClient) -> None:
        for i, events in enumerate(self.batches):
            key = uuid.uuid4().hex
            answer = self._post(http, events, key)
            self.answers.append(answer)
            if self.replay_every and i % self.replay_every == 0:
                self.replays.append((answer, self._post(http, events, key)))
            time.sleep(self.pause_s)

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as http:
                self.send(http)
        except BaseException as exc:
            self.error = exc


class Killer(threading.Thread):
    """SIGKILLs each worker a random 0.3-1.2 s after it is ready, and starts it again,
    until ``stop()`` is called and at least ``min_kills`` kills happened."""

    def __init__(self, workers: Sequence[WorkerProcess], *, min_kills: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.min_kills = min_kills
        self.kills = 0
        self._rng = random.Random(seed)
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        due = {id(w): self._rng.uniform(0.3, 1.2) for w in self.workers}
        while not (self._halt.is_set() and self.kills >= self.min_kills):
            for w in self.workers:
                if w.ready() and w.ready_at is not None:
                    if time.monotonic() - w.ready_at >= due[id(w)]:
                        w.kill()
                        self.kills += 1
                        w.start()
                        due[id(w)] = self._rng.uniform(0.3, 1.2)
            time.sleep(0.02)
