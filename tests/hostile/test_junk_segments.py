"""Junk segment values sent first cannot blind a segment with real volume.

One client key sends 1,000 events, each with its own junk ``country``, and they are
aggregated; then 2,000 units of ``country=DE`` arrive, where the candidate is 50 % slower.
Rows go to values by volume, not by arrival: the results show a DE row, and its latency
guardrail is breached. A declared value gets its row with a single unit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._factories import metric, spec
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT

KEY = "junk-seg"
JUNK = 1000
DE_UNITS = 2000


@pytest.fixture
def server_env(server_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield {**server_env, "SHARPEN_RUN_WORKER": "true", "SHARPEN_AGGREGATOR_BLOCK_MS": "50"}


def _spec() -> dict[str, Any]:
    return spec(
        KEY,
        weight=1,
        segments=[{"name": "country", "values": ["LU"]}, "device"],
        metrics=[
            metric("conv", role="primary", mde=0.1),
            metric("latency_ms", "mean", role="guardrail", direction="decrease", margin=0.1),
        ],
        analysis={"min_days": 0},
    )


def _event(unit: str, variant: str, country: str, latency: float) -> dict[str, Any]:
    return {
        "event_id": f"{unit}-e",
        "experiment": KEY,
        "unit_id": unit,
        "variant": variant,
        "timestamp": time.time(),
        "values": {"conv": 1, "latency_ms": latency},
        "attributes": {"country": country},
    }


def _post(client: httpx.Client, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 1000):
        sent = client.post("/v1/events", json={"events": events[start : start + 1000]})
        assert sent.status_code == 202, sent.text


def _results(client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"/v1/experiments/{KEY}/results", headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_junk_values_sent_first_do_not_take_the_row_of_a_real_segment(
    live_server: LiveServer,
) -> None:
    rng = random.Random(5)
    variants = ("baseline", "candidate")
    with httpx.Client(base_url=live_server.url, headers=CLIENT, timeout=30) as client:
        assert client.post("/v1/experiments", json=_spec(), headers=ADMIN).status_code == 201
        assert client.post(f"/v1/experiments/{KEY}/start", headers=ADMIN).status_code == 200
        junk = [
            _event(f"j{i}", variants[i % 2], f"junk-{i:04d}", rng.gauss(100, 10))
            for i in range(JUNK)
        ]
        junk.append(_event("lu-0", "baseline", "LU", 100.0))  # a declared value, one unit
        _post(client, junk)
        wait_for(
            lambda: sum(_results(client)["units"].values()) == JUNK + 1,
            what="the junk aggregated",
        )
        real = [
            _event(
                f"d{i}",
                variants[i % 2],
                "DE",
                rng.gauss(150 if variants[i % 2] == "candidate" else 100, 10),
            )
            for i in range(DE_UNITS)
        ]
        _post(client, real)
        results = wait_for(
            lambda: (
                (r := _results(client)) and sum(r["units"].values()) == JUNK + 1 + DE_UNITS and r
            ),
            what="DE aggregated",
        )

    rows = {
        (g["metric"], g["variant"], (g["segment"] or {}).get("country")): g
        for g in results["guardrails"]
    }
    de = rows.get(("latency_ms", "candidate", "DE"))
    assert de is not None, sorted({k[2] for k in rows if k[2]})[:60]
    assert de["units"] == {"baseline": DE_UNITS // 2, "treatment": DE_UNITS // 2}
    assert de["status"] == "breached"
    assert de["relative"]["estimate"] == pytest.approx(0.5, abs=0.05)
    # The declared value has its row from its single unit; the junk adds up to __other__.
    segments = {(m["segment"] or {}).get("country") for m in results["metrics"]}
    assert {"DE", "LU", "__other__"} <= segments
    other = rows[("latency_ms", "candidate", "__other__")]
    shown_junk = len([s for s in segments if s and s.startswith("junk-")])
    assert sum(other["units"].values()) == JUNK - shown_junk
