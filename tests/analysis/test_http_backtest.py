"""POST /v1/backtest: JSON and CSV in, verdict out, entry in the journal list."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import redis
from fastapi.testclient import TestClient

from service.store import keys
from tests.analysis._paired_sim import SPEC, paired
from tests.conftest import ADMIN, CLIENT

WIN = {"BR": 0.10, "DE": 0.10, "US": 0.10}


def _csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    columns = [
        "record_id",
        "timestamp",
        "label",
        "country",
        "baseline.prediction",
        "candidate.prediction",
        "baseline.latency_ms",
        "candidate.latency_ms",
    ]
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    for r in records:
        b, c = r["variants"]["baseline"], r["variants"]["candidate"]
        writer.writerow(
            {
                "record_id": r["record_id"],
                "timestamp": r["timestamp"],
                "label": r["label"],
                "country": r["attributes"]["country"],
                "baseline.prediction": b["prediction"],
                "candidate.prediction": c["prediction"],
                "baseline.latency_ms": b["values"]["latency_ms"],
                "candidate.latency_ms": c["values"]["latency_ms"],
            }
        )
    return out.getvalue()


def test_backtest_json_is_journaled(api: TestClient, redis_sync: redis.Redis) -> None:
    recs = paired(3000, seed=71, base_error=0.15, candidate_error=WIN)
    r = api.post(
        "/v1/backtest", json={"spec": SPEC, "records": recs, "source": "hist.json"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["evidence"] == "historical"
    assert body["verdict"]["approved"] is True
    assert body["verdict"]["bar"]["alpha"] == 0.025
    (raw,) = redis_sync.lrange(keys.journal(), 0, -1)
    entry = orjson.loads(raw)
    assert entry["kind"] == "backtest" and entry["id"] == body["journal"]["id"]
    assert entry["experiment"] == "fraud-v7" and entry["evidence"] == "historical"
    assert entry["verdict"]["approved"] is True and entry["actor"] == "tester"
    assert entry["primary"]["metric"] == "accuracy" and entry["source"] == "hist.json"
    assert entry["records"] == 3000


def test_backtest_csv_and_stored_experiment(api: TestClient, redis_sync: redis.Redis) -> None:
    assert api.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
    recs = paired(
        3000, seed=72, base_error=0.15, candidate_error={"BR": 0.25, "DE": 0.08, "US": 0.08}
    )
    r = api.post("/v1/backtest", json={"experiment": "fraud-v7", "csv": _csv(recs)}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["records"] == 3000 and body["period"]["days"] > 14
    assert body["verdict"]["approved"] is False
    assert redis_sync.llen(keys.journal()) == 1


def test_backtest_errors(api: TestClient) -> None:
    recs = paired(20, seed=73, base_error=0.15, candidate_error=WIN)
    del recs[3]["variants"]["candidate"]
    r = api.post("/v1/backtest", json={"spec": SPEC, "records": recs}, headers=ADMIN)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "records.3.variants"

    recs = paired(20, seed=73, base_error=0.15, candidate_error=WIN)
    recs[5]["label"] = None
    r = api.post("/v1/backtest", json={"spec": SPEC, "records": recs}, headers=ADMIN)
    assert r.json()["error"]["details"][0]["field"] == "records.5.label"

    bad_spec = {**SPEC, "metrics": [{**SPEC["metrics"][0], "value": "revenue"}]}
    r = api.post(
        "/v1/backtest",
        json={
            "spec": bad_spec,
            "records": paired(20, seed=73, base_error=0.15, candidate_error=WIN),
        },
        headers=ADMIN,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "spec.metrics.0.value"

    r = api.post(
        "/v1/backtest", json={"spec": {**SPEC, "baseline": "nope"}, "records": []}, headers=ADMIN
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "spec.baseline"

    r = api.post("/v1/backtest", json={"spec": SPEC}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "records"
    r = api.post("/v1/backtest", json={"experiment": "ghost", "csv": "a\n1\n"}, headers=ADMIN)
    assert r.status_code == 404
    r = api.post("/v1/backtest", json={"spec": SPEC, "csv": "x"}, headers=CLIENT)
    assert r.status_code == 403


def test_repeat_updates_its_entry_and_dry_run_writes_none(
    api: TestClient, redis_sync: redis.Redis
) -> None:
    recs = paired(500, seed=74, base_error=0.15, candidate_error=WIN)
    body = {"spec": SPEC, "records": recs, "source": "h.json"}
    first = api.post("/v1/backtest", json=body, headers=ADMIN).json()
    assert first["journal"]["added"] is True and first["dry_run"] is False
    again = api.post("/v1/backtest", json=body, headers=ADMIN).json()
    assert again["journal"]["id"] == first["journal"]["id"] and again["journal"]["added"] is False
    assert redis_sync.llen(keys.journal()) == 1
    (raw,) = redis_sync.lrange(keys.journal(), 0, -1)
    assert orjson.loads(raw)["at"] == again["journal"]["at"] > first["journal"]["at"]

    dry = api.post("/v1/backtest", json={**body, "dry_run": True}, headers=ADMIN).json()
    assert dry["dry_run"] is True and dry["journal"] is None
    assert dry["verdict"] == first["verdict"]
    other = paired(500, seed=75, base_error=0.15, candidate_error=WIN)
    added = api.post("/v1/backtest", json={**body, "records": other}, headers=ADMIN).json()
    assert added["journal"]["added"] is True
    assert redis_sync.llen(keys.journal()) == 2


def test_backtest_input_is_documented_in_openapi(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    post = schema["paths"]["/v1/backtest"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    for field in ("records", "rows", "csv", "dry_run"):
        assert body[field].get("description"), field
    assert "true_positive" in body["records"]["description"]
    assert "<variant>.prediction" in body["rows"]["description"]
    assert "log_loss" in post["description"]
