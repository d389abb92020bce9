"""End to end with real processes: model lines logged through the SDK (with explicit
timestamps over a simulated period) into sharpen (API + worker with the model monitor),
scraped by a real Prometheus loaded with the shipped rules.

* ``fraud``: one region's accuracy collapses in the last day → SharpenModelSegmentDegraded
  fires for that segment alone;
* ``steady``: nothing changes → no model alert over 20 monitor passes;
* ``inputs``: one feature drifts in the last day → SharpenModelInputDrift names it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

import sharpen
from scripts.model_line import Line, records
from tests._live import LiveServer
from tests._wait import log_tail, wait_for
from tests.conftest import ADMIN, CLIENT_KEY, require_binary
from tests.monitor.test_end_to_end import Prometheus, samples

NOW = time.time()
REFERENCE_DAYS = 3
DAYS = REFERENCE_DAYS + 8
LINES = {
    "fraud": Line(segments=10, per_day=260, days=DAYS, seed=41, degrade_segment=3,
                  degrade_since=NOW - 86_400, drop=0.5),
    "steady": Line(segments=2, per_day=220, days=DAYS, seed=42),
    "inputs": Line(segments=2, per_day=150, days=DAYS, seed=43, drift_feature="amount",
                   drift_since=NOW - 86_400, factor=3.0),
}  # fmt: skip


@pytest.fixture
def sharpen_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        **server_env,
        "SHARPEN_RUN_WORKER": "true",
        "SHARPEN_MODEL_MONITOR_INTERVAL_S": "0.5",
        "SHARPEN_MODEL_MONITOR_REFERENCE_DAYS": str(REFERENCE_DAYS),
    }
    server = LiveServer(env, log=tmp_path / "sharpen.log").start(timeout_s=90)
    yield server
    server.stop()


def _log_through_the_sdk(url: str) -> dict[str, int]:
    """Every line's predictions, then the labels that have arrived by now."""
    sent = {}
    with sharpen.Client(url, CLIENT_KEY, poll_interval=None, max_batch=2000) as client:
        for name, line in LINES.items():
            labels = []
            for kwargs, label, label_at in records(line, NOW):
                assert client.log_prediction(name, **kwargs)
                if label_at <= NOW:
                    labels.append((kwargs["record_id"], label))
            for record_id, label in labels:
                assert client.label(name, record_id, label)
            sent[name] = len(labels)
        assert client.flush(timeout=120)
        stats = client.stats
    assert stats.predictions_rejected == stats.labels_rejected == 0
    assert stats.predictions_failed == stats.labels_failed == stats.labels_unmatched == 0
    assert stats.labels_sent == sum(sent.values())
    return sent


def _query(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _firing(prometheus: Prometheus, alertname: str) -> list[dict[str, Any]]:
    return [
        a for a in prometheus.alerts()
        if a["labels"]["alertname"] == alertname and a["state"] == "firing"
    ]  # fmt: skip


@pytest.mark.needs_prometheus
def test_degradation_and_drift_alert_while_a_steady_line_stays_quiet(
    sharpen_server: LiveServer, tmp_path: Path
) -> None:
    binary = require_binary("prometheus", "prometheus")
    prometheus = Prometheus(binary, f"127.0.0.1:{sharpen_server.port}", tmp_path).start()
    log = sharpen_server.log_path
    try:
        _log_through_the_sdk(sharpen_server.url)
        with httpx.Client(base_url=sharpen_server.url, timeout=30) as client:

            def reported(name: str) -> dict[str, Any] | None:
                body = client.get(f"/v1/models/{name}/monitor", headers=ADMIN).json()
                backlog = (body.get("pipeline") or {}).get("backlog", 1)
                return body if body.get("status") != "pending" and backlog == 0 else None

            for name in LINES:
                wait_for(
                    partial(reported, name),
                    what=f"the monitor's report on {name}",
                    explain=log_tail(log),
                    timeout_s=90,
                    interval_s=0.25,
                )

            degraded = wait_for(
                lambda: _firing(prometheus, "SharpenModelSegmentDegraded"),
                what="SharpenModelSegmentDegraded to fire",
                explain=log_tail(prometheus.log),
                timeout_s=90,
                interval_s=0.25,
            )
            assert {(a["labels"]["model"], a["labels"]["segment"]) for a in degraded} == {
                ("fraud", "region=r3")
            }
            assert "accuracy" in {a["labels"]["metric"] for a in degraded}
            alert = next(a for a in degraded if a["labels"]["metric"] == "accuracy")
            assert alert["labels"]["severity"] == "page"
            assert "region=r3" in alert["annotations"]["description"]
            assert alert["annotations"]["runbook_url"].endswith("#sharpenmodelsegmentdegraded")

            drift = wait_for(
                lambda: _firing(prometheus, "SharpenModelInputDrift"),
                what="SharpenModelInputDrift to fire",
                explain=log_tail(prometheus.log),
                timeout_s=90,
                interval_s=0.25,
            )
            assert [(a["labels"]["model"], a["labels"]["feature"]) for a in drift] == [
                ("inputs", "amount")
            ]

            # The steady line: analysed again and again (20 passes at least), never flagged.
            def passes() -> float:
                return samples(client).get(("sharpen_model_monitor_runs_total", ()), 0.0)

            first = passes()
            wait_for(
                passes,
                until=lambda now: now >= first + 20,
                what="20 more monitor passes",
                explain=log_tail(log),
                timeout_s=90,
                interval_s=0.25,
            )
            report = reported("steady")
            assert report is not None and report["status"] == "ok"
            flagged = [s for s in report["statuses"] if s["status"] in ("warning", "degraded")]
            assert flagged == []
            assert [s["status"] for s in report["statuses"]].count("ok") >= 8
            assert not [d for d in report["drift"] if d["status"] == "drift"]
            statuses = [
                v for (n, labels), v in samples(client).items()
                if n == "sharpen_model_segment_status" and ("model", "steady") in labels
            ]  # fmt: skip
            assert statuses and max(statuses) == 0
            # Not only now: at no scrape since the start did Prometheus see one.
            worst = _query(
                prometheus, 'max_over_time(sharpen_model_segment_status{model="steady"}[10m])'
            )
            assert worst and max(float(r["value"][1]) for r in worst) == 0
            assert _query(prometheus, 'max_over_time(ALERTS{model="steady"}[10m])') == []
            fraud = reported("fraud")
            assert fraud is not None
            cell = next(
                c for c in fraud["cells"]
                if (c["segment"], c["metric"], c["window"]) == ("region=r3", "accuracy", "day")
            )  # fmt: skip
            assert cell["status"] == "degraded" and cell["labelled"] >= 200
    finally:
        prometheus.stop()
