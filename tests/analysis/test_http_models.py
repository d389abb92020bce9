"""Records -> analysis over HTTP with a real Redis: late labels, 422s, scopes, trimming."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.analysis._sim import records
from tests.conftest import ADMIN, CLIENT, make_settings, running_app


def _post(
    api: TestClient, name: str, recs: list[dict[str, Any]], headers: dict[str, str] = CLIENT
) -> Any:
    return api.post(f"/v1/models/{name}/records", json={"records": recs}, headers=headers)


def test_records_to_analysis_end_to_end(api: TestClient) -> None:
    recs = records(
        3000,
        seed=51,
        base_error=0.04,
        planted={"country": "BR", "device": "ios"},
        planted_error=0.6,
    )
    for i in range(0, 3000, 1000):
        r = _post(api, "fraud-v6", recs[i : i + 1000])
        assert r.status_code == 202, r.text
        assert r.json() == {"accepted": 1000, "duplicates": 0}
    again = _post(api, "fraud-v6", [*recs[:10], {**recs[0], "record_id": "new-1"}])
    assert again.json() == {"accepted": 1, "duplicates": 10}

    listed = api.get("/v1/models", headers=ADMIN).json()["models"]
    assert [m["name"] for m in listed] == ["fraud-v6"]
    assert listed[0]["records"] == 3001 and listed[0]["duplicates"] == 10

    report = api.get("/v1/models/fraud-v6/analysis", headers=ADMIN)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["model"] == "fraud-v6"
    assert body["overall"]["records"] == 3001
    expected_errors = sum(r["prediction"] != r["label"] for r in recs) + (
        recs[0]["prediction"] != recs[0]["label"]
    )
    assert body["overall"]["errors"] == expected_errors
    assert set(body) >= {
        "overall",
        "segments",
        "time",
        "calibration",
        "categories",
        "slices",
        "pareto",
        "levers",
        "recommendation",
    }
    assert body["slices"][0]["attributes"] == {"country": "BR", "device": "ios"}
    assert set(body["slices"][0]) >= {
        "attributes",
        "records",
        "error_rate",
        "error_share",
        "lift",
        "p_value",
    }
    assert {"bins", "ece"} <= set(body["calibration"])
    assert all({"lever", "share", "evidence", "examples"} <= set(row) for row in body["levers"])
    levers = {row["lever"]: row for row in body["levers"]}
    assert levers["feature_gap"]["errors"] > 50  # the planted slice's confident errors
    assert body["recommendation"]["lever"] == body["levers"][0]["lever"]


def test_labels_join_later(api: TestClient) -> None:
    recs = records(200, seed=52)
    truth = {r["record_id"]: r.pop("label") for r in recs}
    assert _post(api, "late", recs).status_code == 202
    before = api.get("/v1/models/late/analysis", headers=ADMIN).json()["overall"]
    assert before["labelled"] == 0 and before["unlabelled"] == 200

    labels = [{"record_id": k, "label": v} for k, v in truth.items()]
    labels.append({"record_id": "never-seen", "label": 1})
    r = api.post("/v1/models/late/labels", json={"labels": labels}, headers=CLIENT)
    assert r.status_code == 202 and r.json() == {"matched": 200, "unmatched": 1}

    after = api.get("/v1/models/late/analysis", headers=ADMIN).json()["overall"]
    assert after["labelled"] == 200
    (info,) = api.get("/v1/models", headers=ADMIN).json()["models"]
    assert info["labels"] == 200 and info["labelled"] == 200
    assert after["errors"] == sum(r["prediction"] != truth[r["record_id"]] for r in recs)


def test_validation_names_index_and_field(api: TestClient) -> None:
    good = records(3, seed=53)
    bad = [good[0], {**good[1], "confidence": 1.5}, {**good[2], "flags": ["on_fire"]}]
    r = _post(api, "m1", bad)
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert "records.1.confidence" in fields
    assert any(f.startswith("records.2.flags") for f in fields)
    # All or nothing: the valid record was not stored.
    assert api.get("/v1/models", headers=ADMIN).json()["models"] == []

    cases: list[tuple[dict[str, Any], str]] = [
        ({"prediction": 1}, "records.0.record_id"),
        ({"record_id": "x", "prediction": {"a": 1}}, "records.0.prediction"),
        ({"record_id": "x", "features": {"amount": "12"}}, "records.0.features.amount"),
        ({"record_id": "x", "attributes": {"country": ["US"]}}, "records.0.attributes"),
        ({"record_id": "x", "timestamp": "yesterday"}, "records.0.timestamp"),
        ({"record_id": "x", "extra": 1}, "records.0.extra"),
    ]
    for record, field in cases:
        r = _post(api, "m1", [record])
        assert r.status_code == 422, record
        assert r.json()["error"]["details"][0]["field"] == field, r.json()
    r = api.post("/v1/models/Bad Name!/records", json={"records": good}, headers=CLIENT)
    assert r.status_code == 422
    r = api.post(
        "/v1/models/m1/labels", json={"labels": [{"record_id": "a", "label": None}]}, headers=CLIENT
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "labels.0.label"
    r = api.get("/v1/models/m1/analysis?min_support=0", headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "min_support"


def test_scopes(api: TestClient) -> None:
    recs = records(5, seed=54)
    assert _post(api, "m2", recs, headers=ADMIN).status_code == 403
    assert _post(api, "m2", recs, headers={}).status_code == 401
    assert _post(api, "m2", recs).status_code == 202
    assert api.get("/v1/models/m2/analysis", headers=CLIENT).status_code == 403
    assert api.get("/v1/models", headers=CLIENT).status_code == 403
    assert api.get("/v1/models/m2/analysis", headers=ADMIN).status_code == 200
    missing = api.get("/v1/models/nope/analysis", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_trimming_and_frozen_reference(redis_url: str) -> None:
    settings = make_settings(redis_url, model_max_records=300, model_reference_records=100)
    recs = records(500, seed=55)
    for i, r in enumerate(recs):
        r["features"] = {"amount": float(i % 100)}
    with running_app(settings) as api:
        assert _post(api, "small", recs[:150]).status_code == 202
        assert _post(api, "small", recs[150:]).status_code == 202
        (info,) = api.get("/v1/models", headers=ADMIN).json()["models"]
        assert info["records"] == 300 and info["accepted"] == 500 and info["has_reference"]
        body = api.get("/v1/models/small/analysis", headers=ADMIN).json()
        assert body["overall"]["records"] == 300  # the newest 300 are kept
        ref = body["reference"]
        assert ref["source"] == "first_records" and ref["records"] == 100
        assert ref["features"]["amount"]["p1"] == pytest.approx(0.99)
        assert ref["features"]["amount"]["p99"] == pytest.approx(98.01)
        assert ref["features"]["amount"]["kind"] == "numeric"
        # The oldest records are gone, and an old record_id is accepted again.
        assert _post(api, "small", [recs[0]]).json() == {"accepted": 1, "duplicates": 0}
        window = api.get(
            "/v1/models/small/analysis",
            params={"reference_start": "2023-11-14T22:13:20Z", "reference_end": "2030-01-01"},
            headers=ADMIN,
        ).json()["reference"]
        assert window["source"] == "window"
