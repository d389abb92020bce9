"""Results, plan and analyze over HTTP, with events counted by the real aggregator."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.stats import ArmSummary, Look, analyze
from tests._factories import simple_spec
from tests.conftest import ADMIN, CLIENT, results_with_units


def test_results_count_ingested_events(worker_api: TestClient) -> None:
    spec = simple_spec("exp-h", segments=["country"])
    assert worker_api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    assert worker_api.post("/v1/experiments/exp-h/start", headers=ADMIN).status_code == 200
    rng = np.random.default_rng(7)
    events = []
    truth: dict[str, list[float]] = {"control": [], "treatment": []}
    for i in range(400):
        variant = "control" if i % 2 else "treatment"
        converted = float(rng.random() < 0.3)
        truth[variant].append(converted)
        events.append(
            {
                "event_id": f"e{i}",
                "experiment": "exp-h",
                "unit_id": f"u{i}",
                "variant": variant,
                "timestamp": time.time(),
                "values": {"converted": converted},
                "attributes": {"country": "US" if i % 3 else "CA"},
            }
        )
    accepted = worker_api.post("/v1/events", json={"events": events}, headers=CLIENT)
    assert accepted.status_code == 202, accepted.text
    res = results_with_units(worker_api, "exp-h", 400)
    assert res["units"] == {"control": 200, "treatment": 200}
    row = next(r for r in res["metrics"] if r["role"] == "primary" and r["segment"] is None)
    assert row["baseline"]["mean"] == pytest.approx(np.mean(truth["control"]))
    assert row["treatment"]["mean"] == pytest.approx(np.mean(truth["treatment"]))
    assert res["decision"]["action"] == "continue"
    segments = {next(iter(r["segment"].values())) for r in res["metrics"] if r["segment"]}
    assert segments == {"US", "CA"}


def test_plan_endpoint(api: TestClient) -> None:
    spec = simple_spec("exp-p", analysis={"expected_daily_units": 5000, "min_days": 7})
    api.post("/v1/experiments", json=spec, headers=ADMIN)
    plan = api.get("/v1/experiments/exp-p/plan", headers=ADMIN).json()
    assert plan["units_per_variant"] > 0 and plan["days"] >= 7
    assert plan["daily_units_source"] == "expected"
    same = api.post("/v1/plan", json=spec, headers=ADMIN).json()
    assert same["units_per_variant"] == plan["units_per_variant"]
    assert api.get("/v1/experiments/nope/plan", headers=ADMIN).status_code == 404


def test_plan_without_baseline_says_what_is_missing(api: TestClient) -> None:
    spec = simple_spec("exp-q")
    del spec["metrics"][0]["baseline_mean"]
    plan = api.post("/v1/plan", json=spec, headers=ADMIN).json()
    assert plan["units_per_variant"] is None
    assert "baseline_mean" in plan["error"]


def test_analyze_matches_the_engine(api: TestClient) -> None:
    body = {
        "metric": {"kind": "mean", "direction": "increase"},
        "design": "group_sequential",
        "alpha": 0.05,
        "planned_units_per_variant": 20000,
        "looks": [
            {
                "baseline": {"units": 1000, "sum": 98, "sum_sq": 98},
                "treatment": {"units": 1000, "sum": 105, "sum_sq": 105},
            }
        ],
    }
    answer = api.post("/v1/analyze", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    expected = analyze(
        kind="mean",
        direction="increase",
        design="group_sequential",
        alpha=0.05,
        planned_units_per_variant=20000,
        looks=[Look(ArmSummary(1000, 98, 98), ArmSummary(1000, 105, 105))],
    ).to_dict()
    got = answer.json()
    assert got["relative"] == expected["relative"]
    assert got["p_value"] == expected["p_value"]
    assert got["status"] == "inconclusive"
    assert got["boundary"]["critical"] > 1.96


@pytest.mark.parametrize("design", ["fixed", "group_sequential"])
def test_analyze_keeps_the_horizon_verdict_past_the_plan(api: TestClient, design: str) -> None:
    def look(n: int, base: int, treat: int) -> dict[str, Any]:
        return {"baseline": {"units": n, "sum": base}, "treatment": {"units": n, "sum": treat}}

    body: dict[str, Any] = {
        "metric": {"kind": "proportion"},
        "design": design,
        "planned_units_per_variant": 20000,
        "looks": [look(20000, 2000, 2090), look(22000, 2200, 2357)],
    }
    answer = api.post("/v1/analyze", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["status"] == "inconclusive" and got["p_value"] > 0.05
    assert got["horizon_reached_at"] == 1 and got["decided_at"] == 1
    assert got["treatment"]["units"] == 20000
    assert got["past_plan"]["look"] == 2 and got["past_plan"]["interval"] == "always_valid"
    several = {**body, "design": "fixed", "planned_units_per_variant": None}
    refused = api.post("/v1/analyze", json=several, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "planned_units_per_variant"


def test_analyze_names_bad_fields(api: TestClient) -> None:
    bad = {"metric": {"kind": "median"}, "looks": []}
    fields = {
        d["field"]
        for d in api.post("/v1/analyze", json=bad, headers=ADMIN).json()["error"]["details"]
    }
    assert {"metric.kind", "looks"} <= fields
    shrinking = {
        "metric": {"kind": "mean"},
        "design": "always_valid",
        "planned_units_per_variant": 100,
        "looks": [
            {
                "baseline": {"units": 10, "sum": 1, "sum_sq": 1},
                "treatment": {"units": 10, "sum": 1, "sum_sq": 1},
            },
            {
                "baseline": {"units": 5, "sum": 1, "sum_sq": 1},
                "treatment": {"units": 10, "sum": 1, "sum_sq": 1},
            },
        ],
    }
    answer = api.post("/v1/analyze", json=shrinking, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "looks.1.baseline.units"
