"""The service and the SDK give the same answer for every unit (one implementation: the SDK's)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

import sharpen
from tests.assignment._helpers import assign_batch, launch
from tests.conftest import CLIENT

UNITS = [f"unit-{i}" for i in range(100_000)]
COUNTRIES = ["US", "CA", "FR", None]


def _attributes(i: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {"tier": i % 3}
    country = COUNTRIES[i % 4]
    if country is not None:
        attrs["country"] = country
    return attrs


# Every unit goes through every rule: targeting, layer, holdout, traffic, weights.
SPECS: dict[str, dict[str, Any]] = {
    "agree-a": {
        "targeting": {"country": ["US", "CA"], "tier": [1, 2]},
        "layer": "agree",
        "layer_share": 0.6,
        "holdout": 0.1,
    },
    "agree-b": {
        "layer": "agree",
        "layer_share": 0.4,
        "traffic": 0.1,
        "salt": "shared-salt",
        "variants": [
            {"key": "baseline", "weight": 20, "payload": {"model": "v6", "threshold": 0.5}},
            {"key": "wide", "weight": 30, "payload": {"model": "v7", "layers": [1, 2]}},
            {"key": "deep", "weight": 50},
        ],
    },
}


def test_server_and_sdk_agree_on_100k_units(api: TestClient) -> None:
    for key, overrides in SPECS.items():
        launch(api, key, **overrides)
    response = api.get("/v1/config", headers=CLIENT)
    config = sharpen.core.parse_config(response.json(), etag=response.headers["ETag"])
    assert set(config.experiments) == set(SPECS) and not config.skipped
    attributes = [_attributes(i) for i in range(len(UNITS))]

    reasons: dict[str, dict[str, int]] = {}
    for key in SPECS:
        served = assign_batch(api, key, UNITS, attributes)
        assert len(served) == len(UNITS)
        entry = config.experiments[key]
        counts: dict[str, int] = {}
        expected: dict[int, dict[str, Any]] = {}  # evaluate returns shared outcome objects
        for unit, attrs, got in zip(UNITS, attributes, served, strict=True):
            want = sharpen.core.evaluate(entry, unit, attrs)
            body = expected.get(id(want))
            if body is None:
                body = expected[id(want)] = want.as_dict()
            assert got == body, (key, unit, attrs)
            counts[want.reason] = counts.get(want.reason, 0) + 1
        reasons[key] = counts

    # Each rule decided for a good share of the units.
    a, b = reasons["agree-a"], reasons["agree-b"]
    assert min(a["targeting"], a["layer"], a["holdout"], a["assigned"]) > 2_000, a
    assert min(b["layer"], b["traffic"], b["assigned"]) > 2_000, b
    # The layer splits units: nobody is in both.
    assert a["assigned"] + b["assigned"] < 100_000


def test_layer_members_are_disjoint_in_the_served_config(api: TestClient) -> None:
    launch(api, "agree-layer-a", layer="agree", layer_share=0.4)
    launch(api, "agree-layer-b", layer="agree", layer_share=0.6)
    doc = api.get("/v1/config", headers=CLIENT).json()["experiments"]
    a, b = doc["agree-layer-a"]["layer_range"], doc["agree-layer-b"]["layer_range"]
    assert a[1] - a[0] == 4000 and b[1] - b[0] == 6000
    assert a[1] <= b[0] or b[1] <= a[0]
