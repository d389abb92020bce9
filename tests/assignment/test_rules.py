"""Assignment rules through the API: layers, traffic ramps, targeting, unknown experiments."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests._wait import wait_for
from tests.assignment._helpers import (
    act,
    assign,
    assign_batch,
    create,
    launch,
    wait_status,
)
from tests.conftest import ADMIN, CLIENT

UNITS = [f"user-{i}" for i in range(10_000)]


def test_experiments_in_one_layer_never_share_a_unit(api: TestClient) -> None:
    launch(api, "layer-a", layer="ranking", layer_share=0.5)
    launch(api, "layer-b", layer="ranking", layer_share=0.3)
    a = assign_batch(api, "layer-a", UNITS)
    b = assign_batch(api, "layer-b", UNITS)
    in_a = {u for u, x in zip(UNITS, a, strict=True) if x["in_experiment"]}
    in_b = {u for u, x in zip(UNITS, b, strict=True) if x["in_experiment"]}
    assert not in_a & in_b
    assert 4_500 < len(in_a) < 5_500 and 2_600 < len(in_b) < 3_400
    # Units outside an experiment's slice get its baseline, with the reason.
    for x in a:
        if not x["in_experiment"]:
            assert (x["variant"], x["reason"]) == ("baseline", "layer")


def test_a_full_layer_refuses_another_experiment(api: TestClient) -> None:
    launch(api, "full-a", layer="checkout", layer_share=0.7)
    create(api, "full-b", layer="checkout", layer_share=0.5)
    refused = api.post("/v1/experiments/full-b/start", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    # Once the first ends, its slice is free again.
    act(api, "full-a", "stop")
    act(api, "full-b", "start")
    wait_status(api, "full-b", "running")
    got = assign_batch(api, "full-b", UNITS[:2000])
    assert 800 < sum(x["in_experiment"] for x in got) < 1200


def test_raising_traffic_moves_no_unit_between_variants(api: TestClient) -> None:
    # A draft edited from 10% to 50%, started next to a 10% experiment with the same salt.
    launch(api, "ramp-10", salt="ramp", traffic=0.1)
    create(api, "ramp-50", salt="ramp", traffic=0.1)
    edited = api.get("/v1/experiments/ramp-50", headers=ADMIN).json()["spec"]
    edited["traffic"] = 0.5
    assert api.put("/v1/experiments/ramp-50", json=edited, headers=ADMIN).status_code == 200
    act(api, "ramp-50", "start")
    wait_status(api, "ramp-50", "running")
    low = assign_batch(api, "ramp-10", UNITS)
    high = assign_batch(api, "ramp-50", UNITS)
    entered = 0
    for before, after in zip(low, high, strict=True):
        if before["in_experiment"]:
            entered += 1
            assert after["in_experiment"] and after["variant"] == before["variant"]
    assert 800 < entered < 1200
    assert 4_500 < sum(x["in_experiment"] for x in high) < 5_500


def test_targeting_misses_get_the_baseline(api: TestClient) -> None:
    launch(api, "geo", targeting={"country": ["US", "CA"], "beta": [True]})
    hit = assign(api, "geo", "user-1", {"country": "US", "beta": True})
    assert hit["in_experiment"] and hit["reason"] == "assigned"
    for attributes in (
        {"country": "FR", "beta": True},
        {"country": "US"},
        {"country": "US", "beta": "True"},
        {"country": "US", "beta": None},
        None,
    ):
        miss = assign(api, "geo", "user-1", attributes)
        assert miss == {
            "experiment": "geo",
            "variant": "baseline",
            "payload": {"model": "v6"},
            "in_experiment": False,
            "reason": "targeting",
        }


def test_a_draft_serves_the_baseline_and_is_not_in_the_config(api: TestClient) -> None:
    create(api, "drafty")  # no config version bump: the cache's poll notices a new experiment
    body = {"experiment": "drafty", "unit_id": "user-1"}
    wait_for(
        lambda: api.post("/v1/assign", json=body, headers=CLIENT),
        until=lambda answer: answer.status_code == 200,
        what="the cache to know the draft",
    )
    got = assign(api, "drafty", "user-1")
    assert (got["variant"], got["in_experiment"], got["reason"]) == (
        "baseline",
        False,
        "not_running",
    )
    assert "drafty" not in api.get("/v1/config", headers=CLIENT).json()["experiments"]


def test_integer_unit_ids_are_their_decimal_string(api: TestClient) -> None:
    launch(api, "ints")
    assert assign(api, "ints", 12345) == assign(api, "ints", "12345")
