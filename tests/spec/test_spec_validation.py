"""Every spec rule a user can break answers 422 and names the field at fault."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from service.spec.examples import FRAUD_V7
from tests._factories import fraud_spec
from tests.conftest import ADMIN, ROOT


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "validation_failed"
    return [d["field"] for d in body["error"]["details"]]


def _metric(index: int, **changes: Any) -> dict[str, Any]:
    spec = fraud_spec()
    spec["metrics"][index] = {**spec["metrics"][index], **changes}
    return spec


def _without(index: int, field: str) -> dict[str, Any]:
    spec = fraud_spec()
    del spec["metrics"][index][field]
    return spec


CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "weight zero",
        fraud_spec(variants=[{"key": "baseline", "weight": 0}, {"key": "candidate", "weight": 1}]),
        "variants.0.weight",
    ),
    (
        "weight negative",
        fraud_spec(variants=[{"key": "baseline", "weight": 1}, {"key": "candidate", "weight": -3}]),
        "variants.1.weight",
    ),
    (
        "duplicate variant",
        fraud_spec(variants=[{"key": "baseline", "weight": 1}, {"key": "baseline", "weight": 1}]),
        "variants.1.key",
    ),
    ("baseline unknown", fraud_spec(baseline="control"), "baseline"),
    ("one variant", fraud_spec(variants=[{"key": "baseline", "weight": 1}]), "variants"),
    (
        "too many variants",
        fraud_spec(variants=[{"key": f"v{i}", "weight": 1} for i in range(21)]),
        "variants",
    ),
    ("bad key", fraud_spec(key="Fraud V7!"), "key"),
    ("key too long", fraud_spec(key="a" * 65), "key"),
    ("mean without value", _without(2, "value"), "metrics.2.value"),
    ("bad value name", _metric(2, value="latency ms"), "metrics.2.value"),
    ("ratio without numerator", _without(0, "numerator"), "metrics.0.numerator"),
    ("ratio without denominator", _without(1, "denominator"), "metrics.1.denominator"),
    ("guardrail without margin", _without(1, "margin"), "metrics.1.margin"),
    ("primary without mde", _without(0, "mde"), "metrics.0.mde"),
    ("no primary", _metric(0, role="secondary"), "metrics"),
    ("two primaries", _metric(3, role="primary", mde=0.1), "metrics.3.role"),
    ("duplicate metric", _metric(3, name="recall"), "metrics.3.name"),
    ("unknown kind", _metric(3, kind="median"), "metrics.3.kind"),
    (
        "too many metrics",
        fraud_spec(
            metrics=[
                *FRAUD_V7["metrics"],
                *[{"name": f"m{i}", "kind": "mean", "value": "x"} for i in range(47)],
            ]
        ),
        "metrics",
    ),
    ("bad segment name", fraud_spec(segments=["country", "device type"]), "segments.1"),
    ("duplicate segment", fraud_spec(segments=["country", "country"]), "segments.1"),
    ("too many segments", fraud_spec(segments=[f"s{i}" for i in range(11)]), "segments"),
    ("traffic above one", fraud_spec(traffic=1.5), "traffic"),
    ("alpha out of range", fraud_spec(analysis={"alpha": 0.9}), "analysis.alpha"),
    ("empty targeting list", fraud_spec(targeting={"country": []}), "targeting.country"),
    ("unknown field", fraud_spec(colour="blue"), "colour"),
    ("layer_share without layer", fraud_spec(layer_share=0.5), "layer_share"),
]


@pytest.mark.parametrize(
    ("spec", "field"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_names_field(api: TestClient, spec: dict[str, Any], field: str) -> None:
    assert field in _fields(api.post("/v1/experiments", json=spec, headers=ADMIN))


def test_every_fault_is_reported_at_once(api: TestClient) -> None:
    spec = _without(0, "mde")
    del spec["metrics"][1]["margin"]
    fields = _fields(api.post("/v1/experiments", json=spec, headers=ADMIN))
    assert {"metrics.0.mde", "metrics.1.margin"} <= set(fields)


def test_body_over_one_mebibyte_is_413(api: TestClient) -> None:
    spec = fraud_spec(description="x" * 100)
    spec["padding"] = "y" * (1 << 20)
    response = api.post("/v1/experiments", json=spec, headers=ADMIN)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_streamed_body_over_limit_is_413(api: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 65536

    response = api.post(
        "/v1/experiments", content=chunks(), headers={**ADMIN, "content-type": "application/json"}
    )
    assert response.status_code == 413


def test_invalid_json_is_named(api: TestClient) -> None:
    response = api.post(
        "/v1/experiments",
        content=b"{not json",
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["message"] == "body is not valid JSON"


def test_put_key_must_match_url(api: TestClient) -> None:
    assert api.post("/v1/experiments", json=fraud_spec(), headers=ADMIN).status_code == 201
    response = api.put("/v1/experiments/other", json=fraud_spec(), headers=ADMIN)
    assert _fields(response) == ["key"]


def test_example_yaml_is_the_documented_example(api: TestClient) -> None:
    data = yaml.safe_load((ROOT / "examples" / "fraud-v7.yaml").read_text())
    assert data == copy.deepcopy(FRAUD_V7)
    response = api.post("/v1/experiments", json=data, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["metrics"][0]["name"] == "precision"
