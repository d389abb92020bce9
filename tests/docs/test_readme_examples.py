"""The README's SDK examples run as printed against a live sharpen with the example
experiment (examples/fraud-v7.yaml) started: they print what the service assigns, and their
exposures and events land."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
import yaml

import sharpen
from tests._live import LiveServer
from tests._streams import exposed, tracked
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT, CLIENT_KEY, ROOT

README = (ROOT / "README.md").read_text()
UNIT, ATTRIBUTES = "user-42", {"country": "US"}
Landed = tuple[list[tuple[str, str]], list[Any]]


def _example(heading: str) -> str:
    """The first ```python block under ``### heading``."""
    section = README.split(f"\n### {heading}\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, f"no python example under {heading!r}"
    return found.group(1)


def _run(code: str, url: str) -> str:
    env = {**os.environ, "SHARPEN_URL": url, "SHARPEN_CLIENT_KEY": CLIENT_KEY}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _landed(r: redis.Redis) -> Landed:
    return exposed(r, "fraud-v7"), tracked(r, "fraud-v7")


def _count(r: redis.Redis, n: int) -> Callable[[], Landed | None]:
    """A wait_for probe: the exposures and events once there are ``n`` of each (exposures
    reach Redis through the API's buffer, events directly)."""

    def probe() -> Landed | None:
        exposures, events = _landed(r)
        return (exposures, events) if len(exposures) >= n and len(events) >= n else None

    return probe


@pytest.fixture
def fraud_v7(live_server: LiveServer) -> str:
    spec = yaml.safe_load((ROOT / "examples" / "fraud-v7.yaml").read_text())
    with httpx.Client(base_url=live_server.url, timeout=10) as admin:
        assert admin.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
        assert admin.post("/v1/experiments/fraud-v7/start", headers=ADMIN).status_code == 200
        wait_for(
            lambda: "fraud-v7" in admin.get("/v1/config", headers=CLIENT).json()["experiments"],
            what="fraud-v7 in the served config",
        )
        config = sharpen.core.parse_config(admin.get("/v1/config", headers=CLIENT).json())
    expected = sharpen.core.assign_from_config(config, "fraud-v7", UNIT, ATTRIBUTES)
    assert expected.in_experiment and expected.variant is not None
    return expected.variant


def test_python_and_openfeature_examples(
    live_server: LiveServer, fraud_v7: str, redis_sync: redis.Redis
) -> None:
    model = {"baseline": "fraud-v6", "candidate": "fraud-v7"}[fraud_v7]
    printed = _run(_example("Python"), live_server.url)
    assert printed == f"{fraud_v7} {model} assigned"
    landed = wait_for(_count(redis_sync, 1), what="the Python example's writes")
    assert landed is not None
    exposures, events = landed
    assert exposures == [(UNIT, fraud_v7)]
    assert [(e.unit_id, e.variant, e.values) for e in events] == [
        (UNIT, fraud_v7, {"flagged": 1.0, "true_positive": 1.0})
    ]

    printed = _run(_example("OpenFeature (Python)"), live_server.url)
    assert printed == repr({"model": model})
    landed = wait_for(_count(redis_sync, 2), what="the OpenFeature example's writes")
    assert landed is not None
    exposures, events = landed
    assert exposures == [(UNIT, fraud_v7)] * 2  # a new client exposes the unit again
    assert (events[1].unit_id, events[1].variant, events[1].values) == (
        UNIT,
        fraud_v7,
        {"flagged": 1.0},
    )
