"""``sharpen.openfeature`` answers every case of ``tests/spec/openfeature.json`` (the file the
TypeScript provider is tested against too): reasons, errors, metadata, flag values and
``track()``, through the provider and a real client on an in-memory service."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails

import sharpen
from sharpen._retry import RetryPolicy
from sharpen.openfeature import METADATA, SharpenProvider
from tests.conftest import ROOT
from tests.sdk.fakes import API_KEY, FakeService, document, entry

SPEC = json.loads((ROOT / "tests" / "spec" / "openfeature.json").read_text())
TYPES: dict[str, str] = SPEC["types"]["python"]
DEFAULTS: dict[str, Any] = {
    "boolean": False,
    "string": "the-default",
    "integer": -12345,
    "float": -0.5,
    "object": {"the": "default"},
}
UNITS = [f"u{i}" for i in range(1, 9)]


def _experiment(key: str, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """A 50/50 experiment whose variants carry ``payloads`` (one for both, or one each)."""
    first, second = payloads[0], payloads[-1]
    return entry(
        key,
        variants=[
            {"key": "baseline", "weight": 50, "payload": first},
            {"key": "candidate", "weight": 50, "payload": second},
        ],
    )


@pytest.fixture
def clients() -> Iterator[list[sharpen.Client]]:
    made: list[sharpen.Client] = []
    yield made
    for client in made:
        client.close(timeout=2.0)


def _provider(
    clients: list[sharpen.Client], service: FakeService, **kwargs: Any
) -> SharpenProvider:
    """A provider on a client of ``service`` (polling off; uploads when flushed)."""
    client = sharpen.Client(
        "http://sharpen.test",
        API_KEY,
        transport=service.transport(),
        poll_interval=None,
        flush_interval=3600.0,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        timeout=1.0,
        **kwargs,
    )
    clients.append(client)
    return SharpenProvider(client)


def _resolve(
    provider: SharpenProvider, kind: str, flag: str, default: Any, context: EvaluationContext
) -> FlagResolutionDetails[Any]:
    method = getattr(provider, f"resolve_{kind}_details")
    return method(flag, default, context)  # type: ignore[no-any-return]


def _context(spec: dict[str, Any]) -> EvaluationContext:
    return EvaluationContext(spec.get("targeting_key"), spec["attributes"])


def _assert_error(
    got: FlagResolutionDetails[Any], default: Any, code: str, flag: str, why: str
) -> None:
    assert (got.value, str(got.reason), str(got.error_code), got.variant) == (
        default,
        "ERROR",
        code,
        None,
    ), why
    assert got.error_message, why
    assert sorted(got.flag_metadata) == sorted(SPEC["metadata"]["error"]), why
    assert (got.flag_metadata["experiment"], got.flag_metadata["in_experiment"]) == (flag, False)


def test_metadata_keys_are_the_shared_ones() -> None:
    assert {kind: list(keys) for kind, keys in METADATA.items()} == {
        "served": SPEC["metadata"]["served"],
        "error": SPEC["metadata"]["error"],
    }
    assert {case["type"] for case in SPEC["values"]} == set(TYPES)


REMOTE_ANSWERS = [
    *((reason, "candidate", {"value": True}) for reason in SPEC["reasons"]),
    *((reason, None, {}) for reason in SPEC["errors"]),
    ("a_reason_from_a_newer_service", "candidate", {"value": True}),
]


@pytest.mark.parametrize(("reason", "variant", "payload"), REMOTE_ANSWERS, ids=lambda x: str(x))
def test_every_sharpen_reason_through_a_remote_answer(
    clients: list[sharpen.Client], reason: str, variant: str | None, payload: dict[str, Any]
) -> None:
    flag = "of-flag"
    service = FakeService(document(_experiment(flag, [{"value": False}, {"value": True}])))
    answer = {
        "experiment": flag,
        "variant": variant,
        "payload": payload,
        "in_experiment": reason == "assigned",
        "reason": reason,
    }
    service.responders["/v1/assign"] = lambda _: httpx.Response(200, json=answer)
    provider = _provider(clients, service, mode="remote")
    got = provider.resolve_boolean_details(flag, False, EvaluationContext("u1"))
    assert provider.client.stats.remote_errors == 0
    if reason in SPEC["errors"]:
        _assert_error(got, False, SPEC["errors"][reason], flag, reason)
        return
    want = SPEC["reasons"].get(reason, SPEC["unknown_reason"]["reason"])
    assert (got.value, got.variant, str(got.reason), got.error_code) == (
        True,
        "candidate",
        want,
        None,
    )
    assert list(got.flag_metadata) == SPEC["metadata"]["served"]
    assert got.flag_metadata == {
        "experiment": flag,
        "variant": "candidate",
        "in_experiment": reason == "assigned",
        "reason": reason,
    }


@pytest.mark.parametrize("case", SPEC["refusals"]["cases"], ids=lambda c: c["why"])
def test_refusals(clients: list[sharpen.Client], case: dict[str, Any]) -> None:
    flag = case.get("flag", "of-flag")
    service = FakeService(document(_experiment("of-flag", [{"value": False}, {"value": True}])))
    service.fail = case.get("config", {}) is None
    provider = _provider(clients, service)
    got = provider.resolve_boolean_details(flag, True, _context(case["context"]))
    _assert_error(got, True, case["error"], flag, case["why"])
    stats = provider.client.stats
    assert (stats.exposures_pending, stats.exposures_sent) == (0, 0)


@pytest.mark.parametrize(
    ("index", "case"),
    list(enumerate(SPEC["values"])),
    ids=lambda x: x if isinstance(x, int) else f"{x['type']}-{json.dumps(x['payload'])}",
)
def test_flag_values(clients: list[sharpen.Client], index: int, case: dict[str, Any]) -> None:
    flag, kind = f"case-{index}", TYPES[case["type"]]
    service = FakeService(document(_experiment(flag, [case["payload"]])))
    provider = _provider(clients, service)
    for unit in UNITS:
        got = _resolve(provider, kind, flag, DEFAULTS[kind], EvaluationContext(unit))
        if "error" in case:
            _assert_error(got, DEFAULTS[kind], case["error"], flag, unit)
            continue
        assert (got.value, str(got.reason), got.error_code) == (case["value"], "SPLIT", None)
        assert type(got.value) is type(case["value"])
        assert got.flag_metadata == {
            "experiment": flag,
            "variant": got.variant,
            "in_experiment": True,
            "reason": "assigned",
        }
    assert provider.client.flush(timeout=5.0)
    # A mismatch was decided before assigning: no exposure.
    assert len(service.exposures()) == (0 if "error" in case else len(UNITS))


@pytest.mark.parametrize("case", SPEC["every_variant"]["cases"], ids=lambda c: c["type"])
def test_every_variant_is_checked(clients: list[sharpen.Client], case: dict[str, Any]) -> None:
    kind = TYPES[case["type"]]
    service = FakeService(document(_experiment("mixed", case["payloads"])))
    provider = _provider(clients, service)
    for unit in UNITS:
        got = _resolve(provider, kind, "mixed", DEFAULTS[kind], EvaluationContext(unit))
        _assert_error(got, DEFAULTS[kind], case["error"], "mixed", unit)
    assert provider.client.flush(timeout=5.0)
    assert service.exposures() == []


@pytest.mark.parametrize("case", SPEC["track"]["cases"], ids=lambda c: c["why"])
def test_track(
    clients: list[sharpen.Client], case: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from openfeature.track import TrackingEventDetails

    on = [{"value": False}, {"value": True}]
    service = FakeService(document(_experiment("tr-a", on), _experiment("tr-b", on)))
    provider = _provider(clients, service)
    context = _context(case["context"])
    served: dict[str, str] = {}
    for flag in case["served"]:
        got = provider.resolve_boolean_details(flag, False, context)
        assert got.flag_metadata["in_experiment"] is True
        served[flag] = str(got.variant)
    spec_details = case["details"]
    details = (
        None
        if spec_details is None
        else TrackingEventDetails(spec_details.get("value"), dict(spec_details["attributes"]))
    )
    if "refused" in case:
        with pytest.raises(sharpen.InvalidEventError) as refused:
            provider.track(SPEC["track"]["name"], context, details)
        assert refused.value.field == case["refused"]
    else:
        with caplog.at_level(logging.WARNING, logger="sharpen"):
            provider.track(SPEC["track"]["name"], context, details)
    assert provider.client.flush(timeout=5.0)
    events = sorted(service.events(), key=lambda e: str(e["experiment"]))
    if "refused" in case:
        assert events == []
        return
    got_events = [{k: e[k] for k in ("experiment", "values", "attributes")} for e in events]
    assert got_events == case["events"]
    for event in events:
        assert event["unit_id"] == case["context"]["targeting_key"]
        assert event["variant"] == served.get(event["experiment"], event["variant"])
        assert event["variant"] in ("baseline", "candidate")
    if not case["events"]:
        assert "was not served in an experiment here" in caplog.text


def test_track_remembers_the_last_remember_units(
    clients: list[sharpen.Client], caplog: pytest.LogCaptureFixture
) -> None:
    service = FakeService(document(_experiment("tr-a", [{"value": False}, {"value": True}])))
    client = _provider(clients, service).client
    provider = SharpenProvider(client, remember_units=2)
    for unit in ("u1", "u2", "u3"):
        provider.resolve_boolean_details("tr-a", False, EvaluationContext(unit))
    with caplog.at_level(logging.WARNING, logger="sharpen"):
        for unit in ("u1", "u2", "u3"):
            provider.track("converted", EvaluationContext(unit))
    assert client.flush(timeout=5.0)
    assert sorted(e["unit_id"] for e in service.events()) == ["u2", "u3"]
    assert "'u1' was not served" in caplog.text
    with pytest.raises(ValueError, match="remember_units"):
        SharpenProvider(client, remember_units=-1)
