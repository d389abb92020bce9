"""Staged rollouts end to end: a live sharpen (API, aggregator, monitor every 0.3 s) and the
Python SDK evaluating locally, driven unit by unit.

A good candidate ramps 5 % → 20 % → 50 % → 100 % by itself, every unit keeping its
variant; a candidate that halves a guardrail is rolled back during the first step, and
the units that ever saw it stay within the first step's share of the traffic sent.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import sharpen
from tests._factories import metric
from tests._factories import spec as experiment_spec
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT_KEY

# The first step's share of traffic, and the candidate's half of it.
FIRST = 0.05
CANDIDATE_SHARE = FIRST * 0.5
BATCH = 200  # new units per round of traffic


def spec(key: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return experiment_spec(
        key,
        models=("v1", "v2"),
        hypothesis="the new model scores better and keeps requests ok",
        metrics=[
            metric("score", "mean", role="primary", mde=0.05, baseline_mean=1.0, baseline_sd=0.2),
            metric("ok", role="guardrail", margin=0.05),
        ],
        analysis={"min_days": 0},
        guardrails={"auto_rollback": True},
        rollout={"steps": steps, "auto_advance": True},
    )


class Traffic:
    """New units through the SDK: assign, then one outcome event if in the experiment."""

    def __init__(self, client: sharpen.Client, key: str, *, harmful: bool, seed: int) -> None:
        self.client, self.key, self.harmful = client, key, harmful
        self.rng = random.Random(seed)
        self.sent = 0
        self.seen: dict[str, str] = {}  # unit -> variant, for every unit ever in

    def round(self, n: int = BATCH) -> None:
        for _ in range(n):
            unit = f"{self.key}-u{self.sent}"
            self.sent += 1
            answer = self.client.assign(self.key, unit)
            if not answer.in_experiment:
                continue
            assert answer.variant is not None
            self.seen[unit] = answer.variant
            treated = answer.variant == "candidate"
            rate = (0.45 if self.harmful else 0.92) if treated else 0.90  # -50 % when harmful
            score = self.rng.gauss(1.0 if self.harmful or not treated else 1.1, 0.2)
            ok = int(self.rng.random() < rate)
            self.client.track(self.key, unit, {"ok": ok, "score": score})

    def candidates(self) -> int:
        return sum(v == "candidate" for v in self.seen.values())


@pytest.fixture
def sharpen_live(server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        **server_env,
        "SHARPEN_RUN_WORKER": "true",
        "SHARPEN_MONITOR_INTERVAL_S": "0.3",
        "SHARPEN_AGGREGATOR_BLOCK_MS": "50",
    }
    server = LiveServer(env, log=tmp_path / "sharpen.log").start(timeout_s=90)
    yield server
    server.stop()


def _sdk(server: LiveServer) -> sharpen.Client:
    return sharpen.Client(server.url, CLIENT_KEY, poll_interval=0.2, flush_interval=0.1)


def _create(api: httpx.Client, body: dict[str, Any]) -> None:
    assert api.post("/v1/experiments", json=body, headers=ADMIN).status_code == 201
    assert api.post(f"/v1/experiments/{body['key']}/start", headers=ADMIN).status_code == 200


def _step_metric(api: httpx.Client, key: str) -> float | None:
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for s in family.samples:
            if s.name == "sharpen_rollout_step" and s.labels.get("experiment") == key:
                return s.value
    return None


def test_a_good_candidate_ramps_to_its_full_share_by_itself(sharpen_live: LiveServer) -> None:
    key = "good-v2"
    steps: list[dict[str, Any]] = [
        {"traffic": FIRST, "min_duration": "1s", "min_units": 40},
        {"traffic": 0.2, "min_duration": "1s", "min_units": 80},
        {"traffic": 0.5, "min_duration": "1s", "min_units": 120},
        {"traffic": 1.0},
    ]
    with httpx.Client(base_url=sharpen_live.url, timeout=30) as api, _sdk(sharpen_live) as client:
        _create(api, spec(key, steps))
        traffic = Traffic(client, key, harmful=False, seed=11)

        def record() -> dict[str, Any]:
            return dict(api.get(f"/v1/experiments/{key}", headers=ADMIN).json())

        def at_full_share() -> bool:
            traffic.round()
            current = record()
            assert current["status"] == "running", current["audit"][-1]
            return bool(current["rollout"]["step"] == 4)

        wait_for(at_full_share, what="the rollout to reach its last step", timeout_s=180,
                 interval_s=0.05)  # fmt: skip
        final = record()
        assert [h["step"] for h in final["rollout"]["history"]] == [1, 2, 3, 4]
        ramps = [a for a in final["audit"] if a["action"] == "ramp"]
        assert [(a["actor"], a["detail"]["traffic"]) for a in ramps] == [
            ("monitor", 0.2), ("monitor", 0.5), ("monitor", 1.0),
        ]  # fmt: skip

        # The SDK picks the full share up through its config; nobody moved or dropped.
        wait_for(lambda: client.config is not None
                 and client.config.experiments[key].traffic == 1.0,
                 what="the SDK's config to reach the full share")  # fmt: skip
        early = dict(traffic.seen)
        assert len(early) > 200
        for unit, variant in early.items():
            again = client.assign(key, unit)
            assert (again.in_experiment, again.variant) == (True, variant), unit
        before = traffic.sent
        traffic.round()
        assert len(traffic.seen) - len(early) == traffic.sent - before  # everyone is in now

        results = api.get(f"/v1/experiments/{key}/results", headers=ADMIN).json()
        schedule = results["rollout"]["schedule"]
        assert [s["state"] for s in schedule] == ["done", "done", "done", "current"]
        for step, wanted in zip(schedule[:3], steps[:3], strict=True):
            assert step["units"] >= wanted["min_units"], step
        assert results["srm"]["ok"] and results["timeline"][-1]["step"] == 4
        wait_for(lambda: _step_metric(api, key) == 4, what="sharpen_rollout_step to show 4")


def test_a_harmful_candidate_is_rolled_back_during_the_first_step(
    sharpen_live: LiveServer,
) -> None:
    key = "broken-v2"
    steps: list[dict[str, Any]] = [
        {"traffic": FIRST, "min_duration": "1h", "min_units": 100},
        {"traffic": 0.5, "min_duration": "1h"},
        {"traffic": 1.0},
    ]
    with httpx.Client(base_url=sharpen_live.url, timeout=30) as api, _sdk(sharpen_live) as client:
        _create(api, spec(key, steps))
        traffic = Traffic(client, key, harmful=True, seed=12)

        def rolled_back() -> dict[str, Any] | None:
            traffic.round()
            current = dict(api.get(f"/v1/experiments/{key}", headers=ADMIN).json())
            return current if current["status"] == "rolled_back" else None

        record = wait_for(rolled_back, what="the rollback", timeout_s=180, interval_s=0.05)
        assert record["rollout"]["step"] == 1
        assert [a["action"] for a in record["audit"]] == ["create", "start", "rollback"]
        rollback = record["audit"][-1]
        assert (rollback["actor"], rollback["detail"]["metric"]) == ("monitor", "ok")

        # Units that ever saw the candidate: each unit is in the first step, on the
        # candidate's side, with probability p = 5 % x 1/2 independently of the others
        # (the hash draws), so their number is Binomial(N, p) over the N units sent.
        # Mean + 4 sd is exceeded with probability below 1e-4.
        n, p = traffic.sent, CANDIDATE_SHARE
        bound = n * p + 4 * math.sqrt(n * p * (1 - p))
        saw = traffic.candidates()
        print(f"units sent {n}, saw the candidate {saw}, bound {bound:.0f}, "
              f"without a ramp about {n * 0.5:.0f}")  # fmt: skip
        assert 0 < saw <= bound
        in_experiment = len(traffic.seen)
        assert in_experiment <= n * FIRST + 4 * math.sqrt(n * FIRST * (1 - FIRST))

        # The SDK serves the baseline to everyone once its config has the rollback.
        wait_for(lambda: client.config is not None
                 and client.config.experiments[key].status == "rolled_back",
                 what="the SDK's config to have the rollback")  # fmt: skip
        answer = client.assign(key, next(u for u, v in traffic.seen.items() if v == "candidate"))
        assert (answer.variant, answer.in_experiment, answer.reason) == (
            "baseline", False, "rolled_back",
        )  # fmt: skip
