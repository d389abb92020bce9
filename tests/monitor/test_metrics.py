"""The metrics module: one registry per app, bounded labels, route templates, /metrics."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.api.request_table import RequestTable
from service.metrics import ExperimentCollector, ExperimentSnapshot, GuardrailSeries, Metrics
from service.monitor import build_snapshot, dump_snapshot, load_snapshot, segment_label
from service.settings import Settings
from tests._factories import guarded_spec
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT, running_app
from tests.monitor._support import guardrail_row, results_doc


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.assignments.labels("fraud-v7", "candidate").inc(3)
    labels = {"experiment": "fraud-v7", "variant": "candidate"}
    assert a.sample("sharpen_assignments_total", labels) == 3
    assert b.sample("sharpen_assignments_total", labels) is None
    # Label sets known up front exist from the start, at zero.
    assert b.sample("sharpen_events_rejected_total", {"reason": "invalid"}) == 0
    assert b.sample("sharpen_webhook_deliveries_total", {"outcome": "failed"}) == 0
    assert b.sample("sharpen_monitor_actions_total", {"action": "rollback"}) == 0
    assert b.sample("sharpen_exposure_buffer_dropped_total", {"reason": "lost"}) == 0
    assert b.sample("sharpen_exposures_refused_total", {"reason": "busy"}) == 0


def test_two_apps_in_one_process_count_separately(settings: Settings) -> None:
    with running_app(settings) as one, running_app(settings) as two:
        for _ in range(3):
            one.get("/healthz")
        two.get("/healthz")
        labels = {"route": "/healthz", "method": "GET", "status": "200"}
        first = one.app.state.runtime.metrics  # type: ignore[attr-defined]
        second = two.app.state.runtime.metrics  # type: ignore[attr-defined]
        assert first.sample("sharpen_http_requests_total", labels) == 3
        assert second.sample("sharpen_http_requests_total", labels) == 1


def test_requests_are_labelled_by_route_template(api: TestClient) -> None:
    for key in ("a-1", "b-2", "c-3"):
        assert api.get(f"/v1/experiments/{key}", headers=ADMIN).status_code == 404
    assert api.get("/no/such/path").status_code == 404
    assert api.post("/v1/experiments", content=b"x" * (2 << 20), headers=ADMIN).status_code == 413
    assert api.post("/v1/experiments", json=guarded_spec(), headers=ADMIN).status_code == 201
    m: Metrics = api.app.state.runtime.metrics  # type: ignore[attr-defined]

    def count(route: str, method: str, status: str) -> float | None:
        labels = {"route": route, "method": method, "status": status}
        return m.sample("sharpen_http_requests_total", labels)

    assert count("/v1/experiments/{key}", "GET", "404") == 3
    assert count("unmatched", "GET", "404") == 1
    assert count("/v1/experiments", "POST", "413") == 1  # refused before routing
    assert count("/v1/experiments", "POST", "201") == 1
    hist = {"route": "/v1/experiments/{key}", "method": "GET", "status": "404"}
    assert m.sample("sharpen_http_request_duration_seconds_count", hist) == 3
    exposition = api.get("/metrics").text
    assert "/v1/experiments/a-1" not in exposition  # never a raw path
    assert 'route="/v1/experiments/{key}"' in exposition


def test_the_request_table_merges_exact_counts_and_buckets_at_each_read() -> None:
    m = Metrics()
    table = RequestTable(m)
    for seconds in (0.0004, 0.001, 0.003, 0.003, 7.0, 30.0):
        table.record("/v1/assign", "POST", 200, seconds)
    table.record("/v1/assign", "PROPFIND", 405, 0.0001)  # unknown methods fold into OTHER
    labels = {"route": "/v1/assign", "method": "POST", "status": "200"}
    assert m.sample("sharpen_http_requests_total", labels) == 6
    assert m.sample("sharpen_http_request_duration_seconds_sum", labels) == pytest.approx(37.0074)

    def bucket(le: str) -> float | None:
        return m.sample("sharpen_http_request_duration_seconds_bucket", {**labels, "le": le})

    # Cumulative, as observe() would have made them (a bound includes its own value).
    assert [bucket(le) for le in ("0.001", "0.0025", "0.005", "5.0", "10.0", "+Inf")] == [
        2,
        2,
        4,
        4,
        5,
        6,
    ]
    other = {"route": "/v1/assign", "method": "OTHER", "status": "405"}
    assert m.sample("sharpen_http_requests_total", other) == 1
    table.record("/v1/assign", "POST", 200, 0.002)  # merged once, never twice
    assert m.sample("sharpen_http_requests_total", labels) == 7
    assert m.sample("sharpen_http_request_duration_seconds_count", labels) == 7


def test_assignment_endpoints_are_counted_by_route(api: TestClient) -> None:
    body = {"experiment": "nope", "units": [{"unit_id": "u1"}, {"unit_id": "u2"}]}
    assert api.post("/v1/assign/batch", json=body, headers=CLIENT).status_code == 404
    assert (
        api.post("/v1/assign", json={"experiment": "fraud-v7"}, headers=CLIENT).status_code == 422
    )
    assert api.post("/v1/assign", json={}).status_code == 401
    m: Metrics = api.app.state.runtime.metrics  # type: ignore[attr-defined]

    def count(route: str, status: str) -> float | None:
        labels = {"route": route, "method": "POST", "status": status}
        return m.sample("sharpen_http_requests_total", labels)

    assert count("/v1/assign/batch", "404") == 1
    assert count("/v1/assign", "422") == 1
    assert count("/v1/assign", "401") == 1


def test_rejected_events_are_counted_by_reason(api: TestClient) -> None:
    event = {"event_id": "e1", "unit_id": "u1", "timestamp": 1.0, "values": {"recall": 1.0}}
    batch = [
        {**event, "experiment": "nope"},
        {**event, "event_id": "e2", "experiment": "nope", "values": {}},
        {**event, "event_id": "e3", "experiment": "fraud-v7"},
    ]
    assert api.post("/v1/experiments", json=guarded_spec(), headers=ADMIN).status_code == 201
    response = api.post("/v1/events", json={"events": batch}, headers=CLIENT)
    assert response.status_code in (404, 422), response.text
    m: Metrics = api.app.state.runtime.metrics  # type: ignore[attr-defined]

    def rejected(reason: str) -> float | None:
        return m.sample("sharpen_events_rejected_total", {"reason": reason})

    # Each event counts once, under its first error; the whole batch was refused.
    assert rejected("unknown_experiment") == 2
    assert rejected("not_running") == 1  # a draft takes no events
    assert rejected("batch") == 0


def test_metrics_endpoint_needs_no_key_and_shows_experiments(api: TestClient) -> None:
    assert api.post("/v1/experiments", json=guarded_spec(), headers=ADMIN).status_code == 201
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    draft = (("experiment", "fraud-v7"), ("status", "draft"))
    running = (("experiment", "fraud-v7"), ("status", "running"))
    assert samples[("sharpen_experiment_status", draft)] == 1
    assert samples[("sharpen_experiment_status", running)] == 0


def test_segment_values_beyond_the_top_n_fold_into_other() -> None:
    admitted: dict[str, list[str]] = {}
    labels = [segment_label({"country": c}, admitted, 3) for c in ("DE", "US", "FR", "IT", "ES")]
    assert labels == ["country=DE", "country=US", "country=FR", "country=other", "country=other"]
    assert segment_label(None, admitted, 3) == "all"
    assert segment_label({"country": "__other__"}, admitted, 3) == "country=other"
    # Admission is sticky: an admitted value keeps its label.
    assert segment_label({"country": "US"}, admitted, 3) == "country=US"
    two = segment_label({"device": "ios", "country": "DE"}, admitted, 3)
    assert two == "country=DE,device=ios"


def test_snapshot_admits_the_largest_segments_and_shows_the_worst_folded() -> None:
    rows = [guardrail_row("ok", None, estimate=0.01, ci=(0.0, 0.02))]
    rows += [
        guardrail_row("ok", {"country": f"c{i:02d}"}, estimate=0.0, ci=(-0.01, 0.01), units=i)
        for i in range(1, 13)
    ]
    rows.append(guardrail_row("breached", {"country": "c01"}, metric="latency", units=1))
    rows.append(guardrail_row("warning", {"country": "c02"}, units=2))
    admitted: dict[str, list[str]] = {}
    snap = build_snapshot(results_doc(guardrails=rows), admitted=admitted, max_values=10, at=1.0)
    # The ten largest (c03..c12) have their own label; c01 and c02 fold into `other`.
    assert sorted(admitted["country"]) == [f"c{i:02d}" for i in range(3, 13)]
    by_label = {(g.metric, g.segment): g for g in snap.guardrails}
    assert by_label[("recall", "country=other")].status == 2  # the worst of c01, c02
    assert by_label[("latency", "country=other")].status == 3
    assert by_label[("recall", "all")].estimate == 0.01
    assert len({g.segment for g in snap.guardrails}) == 12  # all + 10 + other
    again, admitted_again = load_snapshot(dump_snapshot(snap, admitted))
    assert again == snap and admitted_again == admitted


def test_collector_forgets_experiments_it_no_longer_gets() -> None:
    collector = ExperimentCollector()
    series = GuardrailSeries("recall", "candidate", "all", 3, -0.04, -0.07, -0.01)
    collector.update(
        {"exp": "running"}, [ExperimentSnapshot("exp", 10.0, {"candidate": 5}, 0.3, True, [series])]
    )
    names = {s.name for f in collector.collect() for s in f.samples}
    assert {"sharpen_guardrail_status", "sharpen_guardrail_relative_effect"} <= names
    collector.update({}, [])
    assert [s for f in collector.collect() for s in f.samples] == []


@pytest.mark.parametrize("bad", ["ftp://x", "not a url"])
def test_webhook_urls_are_checked_at_start(redis_url: str, bad: str) -> None:
    from pydantic import ValidationError

    from tests.conftest import make_settings

    with pytest.raises(ValidationError, match="http"):
        make_settings(redis_url, webhook_urls=[bad], webhook_secret="s" * 16)
    with pytest.raises(ValidationError, match="SHARPEN_WEBHOOK_SECRET"):
        make_settings(redis_url, webhook_urls=["https://hooks.example/x"])


def _assign(api: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = api.post("/v1/assign", json=body, headers=CLIENT).json()
    return answer


def test_assignments_are_counted_per_experiment_and_variant(api: TestClient) -> None:
    assert api.post("/v1/experiments", json=guarded_spec(), headers=ADMIN).status_code == 201
    assert api.post("/v1/experiments/fraud-v7/start", headers=ADMIN).status_code == 200
    m: Metrics = api.app.state.runtime.metrics  # type: ignore[attr-defined]
    served: dict[str, int] = {}
    for i in range(40):
        body = {"experiment": "fraud-v7", "unit_id": f"u{i}", "attributes": {"country": "DE"}}
        # the config cache hears of the start within a moment
        answer = wait_for(
            partial(_assign, api, body),
            until=lambda got: got.get("in_experiment"),
            what=f"{body['unit_id']} assigned into the experiment",
        )
        served[answer["variant"]] = served.get(answer["variant"], 0) + 1

    def counted() -> dict[str, float]:
        return {
            v: m.sample("sharpen_assignments_total", {"experiment": "fraud-v7", "variant": v})
            or 0.0
            for v in ("baseline", "candidate")
        }

    # written by the exposure buffer's flush, a few ms later
    wait_for(counted, until=lambda c: sum(c.values()) == 40, what="40 assignments counted")
    assert counted() == {v: float(served.get(v, 0)) for v in ("baseline", "candidate")}
