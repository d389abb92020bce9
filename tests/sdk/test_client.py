"""The synchronous client against an in-memory service behind httpx.MockTransport."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

import sharpen
from sharpen import Client, RetryPolicy
from tests._wait import wait_for
from tests.sdk.fakes import API_KEY, FakeService, document, entry

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.02)


def _candidate_unit(exp: dict[str, Any] | None = None) -> str:
    config = sharpen.core.parse_experiment(exp or entry())
    return next(
        f"u{i}"
        for i in range(1000)
        if sharpen.core.evaluate(config, f"u{i}").variant == "candidate"
    )


# --- config loading -------------------------------------------------------------


def test_loads_config_at_construction_and_evaluates_locally(
    service: FakeService, make_client: Any
) -> None:
    client = make_client()
    assert client.config is not None and set(client.config.experiments) == {"fraud-v7"}
    unit = _candidate_unit()
    result = client.assign("fraud-v7", unit)
    assert (result.variant, result.reason, result.in_experiment) == ("candidate", "assigned", True)
    assert result.payload["model"] == "fraud-v7"
    assert len(service.gets()) == 1
    assert service.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"
    assert service.requests[0].headers["User-Agent"].startswith("sharpen-python/")


def test_refresh_sends_if_none_match_and_keeps_config_on_304(
    service: FakeService, make_client: Any
) -> None:
    client = make_client()
    before = client.config
    assert client.refresh() is False
    assert service.gets()[-1].headers["If-None-Match"] == '"v1"'
    assert client.config is before
    service.set_config(document(entry(status="shipped", shipped_variant="candidate"), etag='"v2"'))
    assert client.refresh() is True
    assert client.config is not None and client.config.etag == '"v2"'
    assert client.assign("fraud-v7", "anyone").reason == "shipped"
    stats = client.stats
    assert (stats.config_loads, stats.config_not_modified) == (2, 1)


def test_background_polling_picks_up_a_new_config(service: FakeService, make_client: Any) -> None:
    client = make_client(poll_interval=0.02)
    service.set_config(document(entry(status="rolled_back"), etag='"v2"'))
    wait_for(
        lambda: client.assign("fraud-v7", "u1").reason,
        until=lambda reason: reason == "rolled_back",
        what="the poll to pick up the rollback",
        interval_s=0.005,
    )
    wait_for(lambda: client.stats.config_not_modified >= 1, what="a 304 on a later poll")
    conditional = [r for r in service.gets() if "If-None-Match" in r.headers]
    assert conditional and conditional[-1].headers["If-None-Match"] == '"v2"'


def test_failed_refresh_keeps_the_last_good_config(service: FakeService, make_client: Any) -> None:
    client = make_client()
    service.set_config({"hash_version": 99, "experiments": {}, "etag": '"v9"'})
    with pytest.raises(sharpen.UnsupportedHashVersionError):
        client.refresh()
    service.responders["/v1/config"] = lambda r: httpx.Response(500)
    with pytest.raises(sharpen.HTTPStatusError) as info:
        client.refresh()
    assert info.value.status_code == 500
    service.fail = True
    with pytest.raises(sharpen.TransportError) as transport_error:
        client.refresh()
    failed = transport_error.value.request
    assert failed is not None and failed.url.path == "/v1/config"
    assert client.assign("fraud-v7", "u1").reason == "assigned"


def test_malformed_entries_are_skipped_and_counted(service: FakeService, make_client: Any) -> None:
    service.set_config(document(entry(), entry("broken", baseline="nope")))
    client = make_client()
    assert client.stats.config_skipped_entries == 1
    assert client.assign("broken", "u1", default="baseline").reason == "unknown_experiment"
    assert client.assign("fraud-v7", "u1").reason == "assigned"


def test_no_config_ever_loaded_falls_back_to_default(
    service: FakeService, make_client: Any
) -> None:
    service.fail = True
    client = make_client()
    result = client.assign("fraud-v7", "u1", default="baseline")
    assert (result.variant, result.reason, result.in_experiment) == ("baseline", "fallback", False)
    assert client.assign("fraud-v7", "u1").variant is None
    assert client.stats.config_errors >= 1


def test_hanging_config_endpoint_does_not_block_construction_past_timeout(
    service: FakeService, make_client: Any
) -> None:
    release = threading.Event()

    def hang(request: httpx.Request) -> httpx.Response:
        release.wait(30)
        return httpx.Response(503)

    service.responders["/v1/config"] = hang
    try:
        client = make_client(timeout=0.1)
        result = client.assign("fraud-v7", "u1", default="baseline")
        assert not release.is_set()  # answered while the service still hangs
        assert (result.variant, result.reason) == ("baseline", "fallback")
    finally:
        release.set()


# --- remote mode ------------------------------------------------------------------


def _remote_answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "experiment": body["experiment"],
            "variant": "candidate",
            "payload": {"model": "m7"},
            "in_experiment": True,
            "reason": "assigned",
        },
    )


def test_remote_mode_posts_assign(service: FakeService, make_client: Any) -> None:
    service.responders["/v1/assign"] = _remote_answer
    client = make_client(mode="remote")
    result = client.assign("fraud-v7", "u1", {"country": "US", "tier": 2})
    assert (result.variant, result.reason, result.in_experiment) == ("candidate", "assigned", True)
    assert result.payload == {"model": "m7"}
    (request,) = service.posted("/v1/assign")
    assert json.loads(request.content) == {
        "experiment": "fraud-v7",
        "unit_id": "u1",
        "attributes": {"country": "US", "tier": 2},
    }
    assert client.stats.exposures_pending == 0  # the service logs remote exposures itself


def test_remote_mode_applies_the_default_to_unknown_experiments(
    service: FakeService, make_client: Any
) -> None:
    service.responders["/v1/assign"] = lambda r: httpx.Response(
        200,
        json={
            "experiment": "nope",
            "variant": None,
            "payload": {},
            "in_experiment": False,
            "reason": "unknown_experiment",
        },
    )
    client = make_client(mode="remote")
    assert client.assign("nope", "u1", default="baseline").variant == "baseline"


@pytest.mark.parametrize(
    "failure",
    [
        lambda r: (_ for _ in ()).throw(httpx.ConnectError("down", request=r)),
        lambda r: httpx.Response(503),
        lambda r: httpx.Response(200, content=b"not json"),
        lambda r: httpx.Response(200, json={"variant": 3}),
    ],
    ids=["transport-raises", "503", "not-json", "malformed"],
)
def test_remote_failure_falls_back_to_local_evaluation(
    service: FakeService, make_client: Any, failure: Any
) -> None:
    service.responders["/v1/assign"] = failure
    client = make_client(mode="remote")
    unit = _candidate_unit()
    result = client.assign("fraud-v7", unit)
    assert (result.variant, result.reason) == ("candidate", "assigned")
    assert client.stats.remote_errors == 1
    assert client.stats.exposures_pending == 1  # local evaluations are exposures


def test_remote_failure_without_config_is_fallback(service: FakeService, make_client: Any) -> None:
    service.fail = True
    client = make_client(mode="remote", timeout=0.2)
    result = client.assign("fraud-v7", "u1", default="baseline")
    assert (result.variant, result.reason, result.in_experiment) == ("baseline", "fallback", False)


def test_remote_assign_returns_within_timeout_while_the_service_hangs(
    service: FakeService, make_client: Any
) -> None:
    release = threading.Event()

    def hang(request: httpx.Request) -> httpx.Response:
        release.wait(30)
        return _remote_answer(request)

    service.responders["/v1/assign"] = hang
    client = make_client(mode="remote", timeout=0.1)
    try:
        result = client.assign("fraud-v7", "u1")
        assert not release.is_set()
        assert result.reason == "assigned"  # local evaluation from the cached config
        assert client.stats.remote_errors == 1
    finally:
        release.set()


# --- exposures ------------------------------------------------------------------------


def test_local_assignments_in_the_experiment_become_exposures(
    service: FakeService, make_client: Any
) -> None:
    service.set_config(document(entry(), entry("targeted", targeting={"country": ["US"]})))
    client = make_client()
    unit = _candidate_unit()
    for _ in range(3):
        client.assign("fraud-v7", unit)
    client.assign("targeted", unit, {"country": "FR"})  # not in the experiment
    client.assign("unknown", unit)
    assert client.flush()
    (exposure,) = service.exposures()
    assert {k: exposure[k] for k in ("experiment", "unit_id", "variant", "version")} == {
        "experiment": "fraud-v7",
        "unit_id": unit,
        "variant": "candidate",
        "version": 2,
    }
    assert exposure["timestamp"].endswith("Z")
    assert client.stats.exposures_sent == 1


def test_exposure_cache_can_be_disabled(service: FakeService, make_client: Any) -> None:
    client = make_client(exposure_cache=0)
    for _ in range(3):
        client.assign("fraud-v7", "u1")
    assert client.flush()
    assert len(service.exposures()) == 3


# --- events, batching, retries ----------------------------------------------------------


def test_track_fills_variant_event_id_and_timestamp(service: FakeService, make_client: Any) -> None:
    client = make_client()
    unit = _candidate_unit()
    client.assign("fraud-v7", unit)
    event_id = client.track(
        "fraud-v7", unit, {"flagged": 1, "latency_ms": 41.5}, attributes={"country": "US"}
    )
    own_id = client.track(
        "fraud-v7",
        "someone",
        {"flagged": 0},
        event_id="evt-7",
        variant="baseline",
        covariates={"pre_flagged": 2},
    )
    assert own_id == "evt-7"
    assert client.flush()
    first, second = service.events()
    assert first["event_id"] == event_id and len(event_id) == 32
    assert first["variant"] == "candidate"
    assert first["values"] == {"flagged": 1, "latency_ms": 41.5}
    assert first["attributes"] == {"country": "US"}
    assert first["timestamp"].endswith("Z")
    assert (second["event_id"], second["variant"], second["covariates"]) == (
        "evt-7",
        "baseline",
        {"pre_flagged": 2},
    )
    assert client.stats.events_sent == 2


def test_track_variant_is_null_for_units_outside_the_experiment(
    service: FakeService, make_client: Any
) -> None:
    service.set_config(document(entry(traffic=0.0)))
    client = make_client()
    client.track("fraud-v7", "u1", {"flagged": 1})
    assert client.flush()
    assert service.events()[0]["variant"] is None


def test_track_rejects_values_the_service_would_refuse(make_client: Any) -> None:
    client = make_client()
    with pytest.raises(sharpen.InvalidEventError, match="values"):
        client.track("fraud-v7", "u1", {"latency_ms": float("nan")})
    assert client.stats.events_pending == 0


def test_batches_by_size_with_distinct_idempotency_keys(
    service: FakeService, make_client: Any
) -> None:
    client = make_client(max_batch=2)
    for i in range(5):
        client.track("fraud-v7", f"u{i}", {"n": i})
    assert client.flush()
    batches = service.posted("/v1/events")
    # The background sender may take a batch before the next event is queued, so the
    # split varies; what must hold: no batch over max_batch, every event once, one key each.
    sizes = [len(json.loads(r.content)["events"]) for r in batches]
    assert max(sizes) <= 2 and sum(sizes) == 5 and len(sizes) >= 3
    sent = [e["unit_id"] for r in batches for e in json.loads(r.content)["events"]]
    assert sorted(sent) == [f"u{i}" for i in range(5)]
    keys = [r.headers["Idempotency-Key"] for r in batches]
    assert len(set(keys)) == len(batches)


def test_full_batch_is_sent_in_the_background(service: FakeService, make_client: Any) -> None:
    client = make_client(max_batch=3)
    for i in range(3):
        client.track("fraud-v7", f"u{i}", {"n": i})
    wait_for(lambda: client.stats.events_sent, until=lambda n: n == 3, what="3 events sent")


def test_time_based_flush(service: FakeService, make_client: Any) -> None:
    client = make_client(flush_interval=0.02)
    client.track("fraud-v7", "u1", {"n": 1})
    wait_for(lambda: client.stats.events_sent, until=lambda n: n == 1, what="1 event sent")


def test_retry_reuses_the_idempotency_key(service: FakeService, make_client: Any) -> None:
    answers = iter([httpx.Response(503), None])
    service.responders["/v1/events"] = lambda r: next(answers)
    client = make_client()
    for i in range(3):
        client.track("fraud-v7", f"u{i}", {"n": i})
    assert client.flush()
    first, second = service.posted("/v1/events")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.content == second.content
    stats = client.stats
    assert (stats.events_sent, stats.retries, stats.events_failed) == (3, 1, 0)


def test_network_errors_are_retried(service: FakeService, make_client: Any) -> None:
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response | None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise httpx.ReadTimeout("slow", request=request)
        return None

    service.responders["/v1/events"] = flaky
    client = make_client()
    client.track("fraud-v7", "u1", {"n": 1})
    assert client.flush()
    assert calls["n"] == 3
    assert client.stats.events_sent == 1


def test_429_retry_after_is_respected(service: FakeService, make_client: Any) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"}), None])
    service.responders["/v1/events"] = lambda r: next(answers)
    client = make_client()
    client.track("fraud-v7", "u1", {"n": 1})
    assert client.flush()
    posts = [
        t
        for r, t in zip(service.requests, service.times, strict=True)
        if r.url.path == "/v1/events"
    ]
    assert len(posts) == 2
    assert posts[1] - posts[0] >= 1.0  # waited as told, not the 10 ms backoff


def test_4xx_is_rejected_without_retry(service: FakeService, make_client: Any) -> None:
    service.responders["/v1/events"] = lambda r: httpx.Response(
        422, json={"error": {"code": "invalid", "message": "bad"}}
    )
    client = make_client()
    client.track("fraud-v7", "u1", {"n": 1})
    client.track("fraud-v7", "u2", {"n": 1})
    assert client.flush()
    assert len(service.posted("/v1/events")) == 1
    assert (client.stats.events_rejected, client.stats.retries) == (2, 0)


def test_gives_up_after_max_attempts(service: FakeService, make_client: Any) -> None:
    service.responders["/v1/events"] = lambda r: httpx.Response(500)
    client = make_client(retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002))
    client.track("fraud-v7", "u1", {"n": 1})
    client.flush()
    assert len(service.posted("/v1/events")) == 3
    assert (client.stats.events_failed, client.stats.events_pending) == (1, 0)


def test_bounded_buffer_drops_and_counts(service: FakeService, make_client: Any) -> None:
    in_flight, release = threading.Event(), threading.Event()

    def block(request: httpx.Request) -> httpx.Response | None:
        in_flight.set()
        release.wait(30)
        return None

    service.responders["/v1/events"] = block
    client = make_client(max_batch=5, max_buffer=5)
    try:
        for i in range(5):
            client.track("fraud-v7", f"u{i}", {"n": i})
        assert in_flight.wait(10)  # the sender holds the first 5 in flight
        for i in range(5, 13):
            client.track("fraud-v7", f"u{i}", {"n": i})
        stats = client.stats
        assert (stats.events_pending, stats.events_dropped) == (5, 3)
    finally:
        release.set()
    client.close()
    assert client.stats.events_sent == 10
    assert len(service.events()) == 10


def test_close_flushes_what_is_queued(service: FakeService) -> None:
    with Client(
        "http://sharpen.test",
        API_KEY,
        transport=service.transport(),
        poll_interval=None,
        flush_interval=3600,
    ) as client:
        client.assign("fraud-v7", "u1")
        for i in range(3):
            client.track("fraud-v7", f"u{i}", {"n": i})
        assert service.posted("/v1/events") == []
    assert len(service.events()) == 3
    assert len(service.exposures()) == 1
    stats = client.stats
    assert (stats.events_pending, stats.exposures_pending, stats.events_sent) == (0, 0, 3)


def test_close_gives_up_at_its_deadline_and_counts_the_rest(
    service: FakeService, make_client: Any
) -> None:
    service.responders["/v1/events"] = lambda r: httpx.Response(503)
    client = make_client(retry=RetryPolicy(base_delay=5.0, max_delay=5.0))
    client.track("fraud-v7", "u1", {"n": 1})
    client.close(timeout=0.2)
    stats = client.stats
    assert stats.events_sent == 0
    assert stats.events_failed + stats.events_dropped == 1
    assert stats.events_pending == 0


def test_after_close_assign_still_answers_and_track_drops(
    service: FakeService, make_client: Any
) -> None:
    client = make_client()
    client.close()
    assert client.assign("fraud-v7", "u1").reason == "assigned"
    client.track("fraud-v7", "u1", {"n": 1})
    assert client.stats.events_dropped == 1
    with pytest.raises(sharpen.ClientClosedError):
        client.refresh()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "edge"}, "mode"),
        ({"timeout": 0}, "timeout"),
        ({"max_batch": 0}, "max_batch"),
        ({"max_buffer": 1, "max_batch": 2}, "max_buffer"),
        ({"poll_interval": -1}, "poll_interval"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Client("http://sharpen.test", API_KEY, **kwargs)


def test_empty_api_key_is_refused() -> None:
    with pytest.raises(ValueError, match="api_key"):
        Client("http://sharpen.test", "")


def test_concurrent_assigns_lose_no_exposure(service: FakeService) -> None:
    client = Client(
        "http://sharpen.test",
        API_KEY,
        transport=service.transport(),
        poll_interval=None,
        flush_interval=0.01,
        max_batch=50,
    )
    units = [[f"t{t}-u{i}" for i in range(1500)] for t in range(4)]

    def work(ids: list[str]) -> None:
        for uid in ids:
            client.assign("fraud-v7", uid)
            client.assign("fraud-v7", uid)  # the repeat is not resent

    threads = [threading.Thread(target=work, args=(ids,)) for ids in units]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    sent = [e["unit_id"] for e in service.exposures()]
    assert sorted(sent) == sorted(uid for ids in units for uid in ids)
    assert client.stats.exposures_sent == 6000
