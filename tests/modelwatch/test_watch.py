"""The model monitor in a runtime on a real Redis: one leader per model, alerts and signed
webhooks once, the Prometheus series, the HTTP API and its refusals."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from scripts.model_line import Line, records
from service.modelwatch import ModelWatch, refresh_model_metrics
from service.modelwatch._alerts import transitions
from service.monitor import verify
from service.runtime import Runtime
from service.store.records import RecordStore
from tests.conftest import ADMIN, CLIENT, make_settings, running_app
from tests.monitor._support import WEBHOOK_SECRET, Receiver, runtime_on

NOW = time.time()
SETTINGS: dict[str, Any] = {"model_monitor_reference_days": 7}


async def _log(runtime: Runtime, name: str, line: Line, end: float = NOW) -> None:
    """Store ``line``'s records with the labels that have arrived by ``end``."""
    store = RecordStore(runtime.redis, max_records=1_000_000)
    batch: list[dict[str, Any]] = []
    labels: list[tuple[str, int]] = []
    for kwargs, label, label_at in records(line, end):
        batch.append(kwargs)
        if label_at <= end:
            labels.append((kwargs["record_id"], label))
        if len(batch) == 5000:
            await store.add(name, batch)
            batch = []
    await store.add(name, batch)
    for start in range(0, len(labels), 5000):
        await store.add_labels(name, labels[start : start + 5000])


def _degraded_line(seed: int = 31) -> Line:
    return Line(segments=6, per_day=250, days=14, seed=seed, degrade_segment=2,
                degrade_since=NOW - 86_400, drop=0.6)  # fmt: skip


async def test_one_leader_one_webhook_and_the_series(redis_url: str) -> None:
    receiver = Receiver()
    async with runtime_on(redis_url, receiver, **SETTINGS) as runtime:
        await _log(runtime, "fraud", _degraded_line())
        first, second = ModelWatch(runtime), ModelWatch(runtime)
        done = await first.run_once()
        assert done.analysed == ["fraud"]
        assert "model.degraded:fraud:region=r2|accuracy" in done.alerts
        assert (await second.run_once()).skipped == ["fraud"]  # the lease is held
        again = await first.run_once()
        assert again.analysed == ["fraud"] and again.alerts == []  # nothing new
        assert runtime.webhooks is not None
        await runtime.webhooks.drain()
        degraded = [
            r for r in receiver.requests if r.headers["X-Sharpen-Event"] == "model.degraded"
        ]
        subjects = sorted(
            (json.loads(r.content)["data"]["segment"], json.loads(r.content)["data"]["metric"])
            for r in degraded
        )
        assert ("region=r2", "accuracy") in subjects
        assert len(subjects) == len(set(subjects))  # each once
        body = json.loads(degraded[0].content)
        assert body["experiment"] == "model:fraud" and body["data"]["model"] == "fraud"
        assert verify(
            WEBHOOK_SECRET, degraded[0].content, degraded[0].headers["X-Sharpen-Signature"]
        )
        assert {c["window"] for c in body["data"]["cells"]} == {"day", "week"}

        await refresh_model_metrics(runtime)
        labels = {"model": "fraud", "metric": "accuracy", "segment": "region=r2"}
        metrics = runtime.metrics
        assert metrics.sample("sharpen_model_segment_status", labels) == 2
        assert (
            metrics.sample("sharpen_model_segment_status", {**labels, "segment": "region=r0"}) == 0
        )
        day = metrics.sample("sharpen_model_metric", {**labels, "window": "day"})
        ref = metrics.sample("sharpen_model_metric", {**labels, "window": "reference"})
        assert day is not None and ref is not None and day < ref * 0.7
        assert metrics.sample("sharpen_model_label_lag_seconds", {"model": "fraud"}) is not None
        completeness = metrics.sample(
            "sharpen_model_label_completeness", {"model": "fraud", "window": "day"}
        )
        assert completeness is not None and 0.5 < completeness <= 1
        assert (
            metrics.sample(
                "sharpen_model_feature_drift_status", {"model": "fraud", "feature": "amount"}
            )
            == 0
        )
        assert metrics.sample("sharpen_model_monitor_runs_total") == 3
        assert (
            metrics.sample("sharpen_model_monitor_alerts_total", {"event": "model.degraded"}) or 0
        ) >= 1
        await first.stop()
        assert (await second.run_once()).analysed == ["fraud"]  # the lease was given up


def test_transitions_recovery_and_drift() -> None:
    def report(at: float, status: str, drift: str = "ok") -> dict[str, Any]:
        return {
            "analysed_at": at,
            "statuses": [{"segment": "all", "metric": "accuracy", "status": status}],
            "cells": [],
            "drift": [{"feature": "amount", "status": drift, "psi": 0.4, "p_value": 0.0}],
        }

    first = transitions(None, report(1.0, "degraded", "drift"))
    assert [(c.event, c.webhook) for c in first] == [
        ("model.degraded", True),
        ("model.drift", True),
    ]
    assert transitions(report(1.0, "degraded", "drift"), report(2.0, "degraded", "drift")) == []
    back = transitions(report(2.0, "degraded", "drift"), report(3.0, "ok"))
    assert [(c.event, c.webhook, c.since) for c in back] == [
        ("model.recovered", True, 2.0),
        ("model.drift_cleared", False, 2.0),
    ]
    assert [c.event for c in transitions(report(3.0, "ok"), report(4.0, "warning"))] == [
        "model.warning"
    ]


def test_http_monitor_and_review(redis_url: str) -> None:
    settings = make_settings(redis_url, **SETTINGS)
    with running_app(settings) as api:
        assert api.get("/v1/models/fraud/monitor", headers=ADMIN).status_code == 404
        assert api.get("/v1/models/fraud/monitor", headers=CLIENT).status_code == 403
        posted = api.post(
            "/v1/models/fraud/records",
            json={"records": [{"record_id": "a", "prediction": 0.4, "label": 0}]},
            headers=CLIENT,
        )
        assert posted.status_code == 202
        pending = api.get("/v1/models/fraud/monitor", headers=ADMIN).json()
        assert pending["status"] == "pending" and "not reported" in pending["message"]
        for since in ("bogus", "0d", "999w", "7"):
            bad = api.get("/v1/review", params={"since": since}, headers=ADMIN)
            assert bad.status_code == 422, since
            assert bad.json()["error"]["details"][0]["field"] == "since"
        assert api.get("/v1/review", params={"model": "Nope!"}, headers=ADMIN).status_code == 422
        assert api.get("/v1/review", params={"model": "ghost"}, headers=ADMIN).status_code == 404
        review = api.get("/v1/review", headers=ADMIN).json()
        assert [line["model"] for line in review["lines"]] == ["fraud"]
        assert review["lines"][0]["status"] == "pending"


async def test_review_after_a_degraded_week(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.modelwatch import _lines, gather_review

    monkeypatch.setattr(_lines, "REVIEW_ANALYSES", 1)  # only the first is analysed

    async with runtime_on(redis_url, **SETTINGS) as runtime:
        await _log(runtime, "fraud", _degraded_line(seed=32))
        await _log(runtime, "churn", Line(segments=2, per_day=200, days=14, seed=33))
        await ModelWatch(runtime).run_once()
        review = await gather_review(runtime, model=None, since_s=7 * 86_400.0)
        lines = {line["model"]: line for line in review["lines"]}
        fraud = lines["fraud"]
        assert fraud["status"] == "degraded"
        assert "accuracy in region=r2" in fraud["changes"]["degraded"]
        rate, volume = fraud["error_rate"]["now"], fraud["records"]["now"]
        assert fraud["errors_per_week"] == pytest.approx(rate * volume, rel=1e-3)
        assert fraud["value_at_stake"] is None  # no experiment on the line prices an error
        assert fraud["pattern"]["lever"]  # the analysis' recommendation
        # No prices: ranked by errors a week (fraud has three times churn's traffic).
        assert [(line["model"], line["rank"]) for line in review["lines"]] == [
            ("fraud", 1),
            ("churn", 2),
        ]
        assert "ranked below 1" in lines["churn"]["pattern"]["unavailable"]


def test_logging_is_refused_loudly_while_the_monitor_is_behind(redis_url: str) -> None:
    settings = make_settings(redis_url, model_monitor_backlog_max=1000)
    with running_app(settings) as api:
        body = {"records": [{"record_id": f"r{i}", "prediction": 1} for i in range(1000)]}
        assert api.post("/v1/models/fraud/records", json=body, headers=CLIENT).status_code == 202
        more = {"records": [{"record_id": "late", "prediction": 1}]}
        refused = api.post("/v1/models/fraud/records", json=more, headers=CLIENT)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert "behind" in refused.json()["error"]["message"]
        labels = {"labels": [{"record_id": "r1", "label": 1}]}
        assert api.post("/v1/models/fraud/labels", json=labels, headers=CLIENT).status_code == 503
        listed = api.get("/v1/models", headers=ADMIN).json()["models"]
        assert listed[0]["accepted"] == 1000  # nothing of the refused call was kept


@pytest.mark.parametrize("positive", ["fraud", None])
def test_settings_take_the_positive_class(redis_url: str, positive: str | None) -> None:
    with running_app(make_settings(redis_url)) as api:
        answer = api.put("/v1/models/m/settings", json={"positive": positive}, headers=ADMIN)
        assert answer.status_code == 200
        assert api.get("/v1/models/m/settings", headers=ADMIN).json()["positive"] == positive


def test_the_dashboard_has_the_model_panels() -> None:
    from tests.conftest import ROOT

    board = json.loads((ROOT / "deploy" / "grafana" / "sharpen-dashboard.json").read_text())
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"model", "model_metric"} <= variables
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for series in (
        "sharpen_model_segment_status",
        "sharpen_model_metric",
        "sharpen_model_feature_drift",
        "sharpen_model_label_completeness",
        "sharpen_model_label_lag_seconds",
    ):
        assert series in exprs
