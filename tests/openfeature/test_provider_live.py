"""The real openfeature-sdk drives ``sharpen.openfeature`` against a live sharpen (uvicorn
process, private Redis): flag values are the payloads ``client.assign()`` serves, every
reason and error path answers as the shared table says, exposures and tracked events land
in the service's streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason
from openfeature.provider import FeatureProvider, ProviderStatus

import sharpen
from service.embedded import free_port
from sharpen.openfeature import SharpenProvider
from tests._live import LiveServer
from tests._streams import exposed, tracked
from tests._wait import wait_for
from tests.assignment._helpers import act, create, launch
from tests.conftest import CLIENT_KEY, ROOT

T = TypeVar("T")
SPEC = json.loads((ROOT / "tests" / "spec" / "openfeature.json").read_text())
UNITS = [f"user-{i}" for i in range(400)]
ATTRS: list[dict[str, Any]] = [
    {"country": ["US", "FR", "DE"][i % 3], "tier": i % 4, "beta": i % 2 == 0, "tags": ["x"]}
    for i in range(len(UNITS))
]


def _variants(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": "baseline", "weight": 50, "payload": baseline},
        {"key": "candidate", "weight": 50, "payload": candidate},
    ]


# flag key -> (flag type, default, spec overrides): between them every in-running reason.
FLAGS: dict[str, tuple[str, Any, dict[str, Any]]] = {
    "of-model": (
        "string",
        "none",
        {
            "variants": _variants({"value": "fraud-v6"}, {"value": "fraud-v7"}),
            "targeting": {"country": ["US", "FR"]},
            "traffic": 0.6,
        },
    ),
    "of-depth": (
        "integer",
        -1,
        {
            "variants": _variants({"value": 10}, {"value": 20}),
            "layer": "of",
            "layer_share": 0.5,
            "holdout": 0.1,
        },
    ),
    "of-threshold": ("float", -1.0, {"variants": _variants({"value": 1}, {"value": 0.75})}),
    "of-enabled": ("boolean", False, {"variants": _variants({"value": False}, {"value": True})}),
    "of-config": (
        "object",
        {},
        {"variants": _variants({"model": "v6", "k": [1, 2]}, {"model": "v7", "k": [3]})},
    ),
}


def _expected_value(payload: Any, kind: str) -> Any:
    """The shared rule, written out independently of the provider."""
    plain = json.loads(json.dumps(sharpen.Assignment("x", "v", payload, True, "x").as_dict()))
    body = plain["payload"]
    if "value" not in body:
        return body  # object flags only, here
    return float(body["value"]) if kind == "float" else body["value"]


def _details(
    flags: OpenFeatureClient, kind: str, key: str, default: Any, context: EvaluationContext | None
) -> FlagEvaluationDetails[Any]:
    method = getattr(flags, f"get_{kind}_details")
    return method(key, default, context)  # type: ignore[no-any-return]


async def _details_async(
    flags: OpenFeatureClient, kind: str, key: str, default: Any, context: EvaluationContext
) -> FlagEvaluationDetails[Any]:
    method = getattr(flags, f"get_{kind}_details_async")
    return await method(key, default, context)  # type: ignore[no-any-return]


def _at_least(n: int, read: Callable[[], list[T]]) -> Callable[[], list[T]]:
    """A probe for wait_for (n >= 1): what ``read`` returns once it holds ``n`` items."""

    def probe() -> list[T]:
        items = read()
        return items if len(items) >= n else []

    return probe


def _use(provider: FeatureProvider, domain: str) -> OpenFeatureClient:
    if hasattr(api, "set_provider_and_wait"):  # openfeature-sdk >= 0.10: set_provider is async
        api.set_provider_and_wait(provider, domain)
    else:
        api.set_provider(provider, domain)
    flags = api.get_client(domain)
    assert flags.get_provider_status() == ProviderStatus.READY
    return flags


@pytest.fixture
def service(live_server: LiveServer, redis_sync: redis.Redis) -> Iterator[tuple[str, redis.Redis]]:
    with httpx.Client(base_url=live_server.url, timeout=10) as admin:
        for key, (_, _, overrides) in FLAGS.items():
            launch(admin, key, **overrides)
    yield live_server.url, redis_sync
    api.clear_providers()


@pytest.fixture
def client(service: tuple[str, redis.Redis]) -> Iterator[sharpen.Client]:
    url, _ = service
    with sharpen.Client(url, CLIENT_KEY, poll_interval=0.2, timeout=5) as sync_client:
        wait_for(
            lambda: (
                sync_client.config is not None and set(sync_client.config.experiments) >= set(FLAGS)
            ),
            what="the client's config to hold every flag",
        )
        yield sync_client


def test_flags_resolve_to_the_payloads_assign_serves(
    service: tuple[str, redis.Redis], client: sharpen.Client
) -> None:
    _, r = service
    flags = _use(SharpenProvider(client), "resolve")
    seen: set[str] = set()
    served: dict[str, set[tuple[str, str]]] = {key: set() for key in FLAGS}
    for key, (kind, default, _) in FLAGS.items():
        for unit, attrs in zip(UNITS, ATTRS, strict=True):
            got = _details(flags, kind, key, default, EvaluationContext(unit, attrs))
            want = client.assign(key, unit, {k: v for k, v in attrs.items() if k != "tags"})
            assert want.variant is not None
            assert got.error_code is None, got.error_message
            assert got.value == _expected_value(want.payload, kind)
            assert type(got.value) is type(_expected_value(want.payload, kind))
            assert got.variant == want.variant
            assert got.reason == SPEC["reasons"][want.reason]
            assert got.flag_metadata == {
                "experiment": key,
                "variant": want.variant,
                "in_experiment": want.in_experiment,
                "reason": want.reason,
            }
            seen.add(want.reason)
            if want.in_experiment:
                served[key].add((unit, want.variant))
    assert {"assigned", "targeting", "traffic", "layer", "holdout"} <= seen
    # Each unit in an experiment was exposed once, with the variant it got.
    assert client.flush(timeout=10)
    for key, pairs in served.items():
        assert len(pairs) > 50
        landed = wait_for(
            _at_least(len(pairs), lambda key=key: exposed(r, key)),  # type: ignore[misc]
            what=f"the exposures of {key}",
        )
        assert sorted(landed) == sorted(pairs)


def test_async_resolution_with_either_client(
    service: tuple[str, redis.Redis], client: sharpen.Client
) -> None:
    url, _ = service
    reference = {
        (key, unit): _details(
            _use(SharpenProvider(client), "reference"),
            kind,
            key,
            default,
            EvaluationContext(unit, a),
        )
        for key, (kind, default, _) in FLAGS.items()
        for unit, a in zip(UNITS[:100], ATTRS[:100], strict=True)
    }

    async def resolve(flags: OpenFeatureClient) -> dict[tuple[str, str], Any]:
        return {
            (key, unit): await _details_async(flags, kind, key, default, EvaluationContext(unit, a))
            for key, (kind, default, _) in FLAGS.items()
            for unit, a in zip(UNITS[:100], ATTRS[:100], strict=True)
        }

    async def main() -> None:
        async with sharpen.AsyncClient(url, CLIENT_KEY, timeout=5) as local_async:
            flags = _use(SharpenProvider(local_async), "async-local")
            assert await resolve(flags) == reference
            # The sync API cannot await an AsyncClient: it says so, with the default.
            refused = flags.get_boolean_details("of-enabled", False, EvaluationContext("user-1"))
            assert (refused.value, refused.reason) == (False, Reason.ERROR)
            assert refused.error_code == ErrorCode.GENERAL
            assert "async API" in (refused.error_message or "")
        async with sharpen.AsyncClient(url, CLIENT_KEY, mode="remote", timeout=5) as remote:
            assert await resolve(_use(SharpenProvider(remote), "async-remote")) == reference
            assert remote.stats.remote_errors == 0
        # A sync Client through the async API: in-process locally, off the loop remotely.
        assert await resolve(_use(SharpenProvider(client), "sync-client")) == reference
        with sharpen.Client(url, CLIENT_KEY, mode="remote", timeout=5) as sync_remote:
            assert await resolve(_use(SharpenProvider(sync_remote), "sync-remote")) == reference
            assert sync_remote.stats.remote_errors == 0

    asyncio.run(main())


def test_every_reason_and_error(
    service: tuple[str, redis.Redis], client: sharpen.Client, tmp_path: Path
) -> None:
    url, r = service
    variants = _variants({"value": "fraud-v6"}, {"value": "fraud-v7"})
    with httpx.Client(base_url=url, timeout=10) as admin:
        for key in ("of-shipped", "of-stopped", "of-rolled", "of-mismatch"):
            launch(admin, key, variants=variants)
        act(admin, "of-shipped", "ship", variant="candidate")
        act(admin, "of-stopped", "stop")
        act(admin, "of-rolled", "rollback")
        create(admin, "of-draft", variants=variants)
    ended = {"of-shipped": "shipped", "of-stopped": "stopped", "of-rolled": "rolled_back"}
    wait_for(
        lambda: (
            client.config is not None
            and {
                k: client.config.experiments[k].status
                for k in ended
                if k in client.config.experiments
            }
            == ended
        ),
        what="the ended experiments in the client's config",
    )
    flags = _use(SharpenProvider(client), "reasons")
    context = EvaluationContext("user-7", {"country": "US"})

    for key, reason, variant in [
        ("of-shipped", "STATIC", "candidate"),
        ("of-stopped", "DISABLED", "baseline"),
        ("of-rolled", "DISABLED", "baseline"),
    ]:
        got = flags.get_string_details(key, "none", context)
        value = "fraud-v7" if variant == "candidate" else "fraud-v6"
        assert (got.value, got.reason, got.variant) == (value, reason, variant), key
        assert got.reason == SPEC["reasons"][ended[key]]
        assert got.flag_metadata == {
            "experiment": key,
            "variant": variant,
            "in_experiment": False,
            "reason": ended[key],
        }

    def error(got: FlagEvaluationDetails[Any], code: ErrorCode, default: Any) -> str:
        assert (got.value, got.reason, got.error_code, got.variant) == (
            default,
            Reason.ERROR,
            code,
            None,
        )
        return got.error_message or ""

    # A draft is not in the SDK config (FLAG_NOT_FOUND locally); the service answers
    # not_running for it, which a remote client passes on.
    assert "of-draft" in error(
        flags.get_string_details("of-draft", "none", context), ErrorCode.FLAG_NOT_FOUND, "none"
    )
    with sharpen.Client(url, CLIENT_KEY, mode="remote", timeout=5) as remote:
        draft = _use(SharpenProvider(remote), "remote").get_string_details(
            "of-draft", "none", context
        )
        assert (draft.value, draft.reason, draft.variant) == ("fraud-v6", "DISABLED", "baseline")
        assert remote.stats.remote_errors == 0

    assert "of-nope" in error(
        flags.get_string_details("of-nope", "none", context), ErrorCode.FLAG_NOT_FOUND, "none"
    )
    for missing in (None, EvaluationContext(), EvaluationContext("", {"country": "US"})):
        message = error(
            flags.get_string_details("of-mismatch", "none", missing),
            ErrorCode.TARGETING_KEY_MISSING,
            "none",
        )
        assert "targeting_key" in message
    # A type the payloads do not give: the default, and no exposure logged for anyone.
    for unit in UNITS[:50]:
        message = error(
            flags.get_boolean_details("of-mismatch", True, EvaluationContext(unit)),
            ErrorCode.TYPE_MISMATCH,
            True,
        )
        assert "'value'" not in message and "is not a boolean" in message
        assert flags.get_integer_details("of-mismatch", 3, EvaluationContext(unit)).value == 3
    assert client.flush(timeout=10)
    assert exposed(r, "of-mismatch") == []
    # The right type for the same units does expose those in the experiment.
    inside = {
        (unit, got.variant)
        for unit in UNITS[:50]
        if (
            got := flags.get_string_details("of-mismatch", "none", EvaluationContext(unit))
        ).flag_metadata["in_experiment"]
    }
    assert client.flush(timeout=10)
    assert sorted(wait_for(lambda: exposed(r, "of-mismatch"), what="exposures")) == sorted(inside)

    # No config ever loaded (nothing listens there): PROVIDER_NOT_READY, from the provider.
    dead = f"http://127.0.0.1:{free_port()}"
    with sharpen.Client(dead, CLIENT_KEY, timeout=0.2, poll_interval=None) as offline:
        api.set_provider(SharpenProvider(offline), "offline")
        offline_flags = api.get_client("offline")
        wait_for(
            lambda: offline_flags.get_provider_status() == ProviderStatus.ERROR,
            what="the provider's failed initialisation",
        )
        message = error(
            offline_flags.get_string_details("of-model", "none", context),
            ErrorCode.PROVIDER_NOT_READY,
            "none",
        )
        assert message == "no sharpen config loaded yet"


@pytest.mark.skipif(
    not hasattr(OpenFeatureClient, "track"), reason="openfeature-sdk < 0.9 has no tracking API"
)
def test_track_lands_for_the_experiments_the_unit_was_served(
    service: tuple[str, redis.Redis], client: sharpen.Client
) -> None:
    from openfeature.track import TrackingEventDetails

    _, r = service
    flags = _use(SharpenProvider(client), "track")
    served: dict[str, str] = {}
    for unit, attrs in zip(UNITS[:120], ATTRS[:120], strict=True):
        context = EvaluationContext(unit, attrs)
        got = flags.get_boolean_details("of-enabled", False, context)
        if got.flag_metadata["in_experiment"]:
            served[unit] = str(got.variant)
        details = TrackingEventDetails(value=2.5).add("revenue", 12).add("plan", "pro")
        flags.track("converted", context, details)
    # Explicitly routed: a unit this provider never served (the service decides its variant).
    flags.track(
        "converted",
        EvaluationContext("stranger"),
        TrackingEventDetails(attributes={"experiment": "of-threshold"}),
    )
    # Served in no experiment: nothing to record.
    flags.track("converted", EvaluationContext("nobody"), TrackingEventDetails(value=1.0))
    assert client.flush(timeout=10)

    events = wait_for(
        _at_least(len(served), lambda: tracked(r, "of-enabled")),
        what="the tracked events of of-enabled",
    )
    assert sorted((e.unit_id, e.variant) for e in events) == sorted(served.items())
    assert all(e.values == {"converted": 2.5, "revenue": 12.0} for e in events)
    routed = wait_for(lambda: tracked(r, "of-threshold"), what="the routed event")
    assert [(e.unit_id, e.values) for e in routed] == [("stranger", {"converted": 1.0})]
    assert routed[0].variant == client.assign("of-threshold", "stranger").variant
    assert client.stats.events_sent == len(served) + 1
    with pytest.raises(sharpen.InvalidEventError, match="unit_id"):
        flags.track("converted", EvaluationContext(), None)
