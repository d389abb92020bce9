"""Lifecycle transitions, the frozen spec of a running experiment, versions and audit."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests._factories import fraud_spec, simple_spec
from tests.conftest import ADMIN

ACTIONS = ("start", "stop", "ship", "rollback")
LEGAL = {
    ("draft", "start"): "running",
    ("running", "stop"): "stopped",
    ("running", "ship"): "shipped",
    ("running", "rollback"): "rolled_back",
}
PATHS = {
    "draft": [],
    "running": ["start"],
    "stopped": ["start", "stop"],
    "shipped": ["start", "ship"],
    "rolled_back": ["start", "rollback"],
}


def _create(api: TestClient, key: str = "exp-a") -> None:
    response = api.post("/v1/experiments", json=simple_spec(key), headers=ADMIN)
    assert response.status_code == 201, response.text


def _act(api: TestClient, key: str, action: str) -> tuple[int, dict[str, Any]]:
    response = api.post(f"/v1/experiments/{key}/{action}", headers=ADMIN)
    return response.status_code, response.json()


@pytest.mark.parametrize(("status", "action"), list(itertools.product(PATHS, ACTIONS)))
def test_every_transition(api: TestClient, status: str, action: str) -> None:
    _create(api)
    for step in PATHS[status]:
        assert _act(api, "exp-a", step)[0] == 200
    code, body = _act(api, "exp-a", action)
    expected = LEGAL.get((status, action))
    if expected is None:
        assert code == 409
        assert status in body["error"]["message"]
        assert api.get("/v1/experiments/exp-a", headers=ADMIN).json()["status"] == status
    else:
        assert code == 200, body
        assert body["status"] == expected


def test_running_spec_is_frozen(api: TestClient) -> None:
    _create(api)
    _act(api, "exp-a", "start")
    response = api.put("/v1/experiments/exp-a", json=simple_spec(traffic=0.5), headers=ADMIN)
    assert response.status_code == 409
    assert "frozen" in response.json()["error"]["message"]
    assert api.get("/v1/experiments/exp-a", headers=ADMIN).json()["spec"]["traffic"] == 1.0


def test_draft_edits_are_versioned_and_audited(api: TestClient) -> None:
    _create(api)
    edited = api.put("/v1/experiments/exp-a", json=simple_spec(traffic=0.5), headers=ADMIN)
    assert edited.status_code == 200
    record = edited.json()
    assert record["version"] == 2
    assert record["spec"]["traffic"] == 0.5
    update = record["audit"][-1]
    assert update["action"] == "update"
    assert update["detail"]["changed"] == ["traffic"]
    same = api.put("/v1/experiments/exp-a", json=simple_spec(traffic=0.5), headers=ADMIN).json()
    assert same["version"] == 2, "an unchanged spec is not a new version"


def test_audit_names_the_key_not_the_secret(api: TestClient) -> None:
    _create(api)
    _act(api, "exp-a", "start")
    response = api.post("/v1/experiments/exp-a/stop", json={"reason": "bug in v7"}, headers=ADMIN)
    audit = response.json()["audit"]
    assert [e["action"] for e in audit] == ["create", "start", "stop"]
    assert {e["actor"] for e in audit} == {"tester"}
    assert audit[-1]["detail"] == {"reason": "bug in v7"}
    assert "test-admin-key" not in response.text
    assert response.json()["ended_at"] is not None


def test_duplicate_create_is_409(api: TestClient) -> None:
    _create(api)
    response = api.post("/v1/experiments", json=simple_spec(), headers=ADMIN)
    assert response.status_code == 409


def test_unknown_experiment_is_404(api: TestClient) -> None:
    assert api.get("/v1/experiments/nope", headers=ADMIN).status_code == 404
    assert api.post("/v1/experiments/nope/start", headers=ADMIN).status_code == 404


def test_ship_names_the_variant_when_several_candidates(api: TestClient) -> None:
    spec = simple_spec(
        variants=[
            {"key": "control", "weight": 1},
            {"key": "a", "weight": 1},
            {"key": "b", "weight": 1},
        ]
    )
    assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    _act(api, "exp-a", "start")
    assert _act(api, "exp-a", "ship")[0] == 409
    response = api.post("/v1/experiments/exp-a/ship", json={"variant": "b"}, headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["shipped_variant"] == "b"


def test_layer_ranges_are_disjoint_and_released(api: TestClient) -> None:
    for key in ("l-a", "l-b", "l-c"):
        spec = simple_spec(key, layer="models", layer_share=0.4)
        assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    a = _act(api, "l-a", "start")[1]["layer_range"]
    b = _act(api, "l-b", "start")[1]["layer_range"]
    assert a == [0, 4000] and b == [4000, 8000]
    code, body = _act(api, "l-c", "start")
    assert code == 409 and "layer" in body["error"]["message"]
    _act(api, "l-a", "stop")
    assert _act(api, "l-c", "start")[1]["layer_range"] == [0, 4000]


def test_list_filters_by_status_and_layer(api: TestClient) -> None:
    _create(api, "exp-a")
    spec = fraud_spec(key="exp-b", layer="fraud", layer_share=0.5)
    api.post("/v1/experiments", json=spec, headers=ADMIN)
    _act(api, "exp-b", "start")
    listed = api.get("/v1/experiments", headers=ADMIN).json()["experiments"]
    assert [e["key"] for e in listed] == ["exp-a", "exp-b"]
    running = api.get("/v1/experiments?status=running", headers=ADMIN).json()["experiments"]
    assert [e["key"] for e in running] == ["exp-b"]
    layered = api.get("/v1/experiments?layer=fraud", headers=ADMIN).json()["experiments"]
    assert [e["key"] for e in layered] == ["exp-b"]
    bad = api.get("/v1/experiments?status=paused", headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "status"
