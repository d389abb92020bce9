"""``assign(..., expose=False)`` + ``expose()``, and overrides (``overrides=``, ``force()``),
in both clients: deferred exposures are logged once, overrides are never exposed."""

from __future__ import annotations

from typing import Any

import pytest

import sharpen
from sharpen import AsyncClient
from tests.sdk.conftest import FAST_RETRY
from tests.sdk.fakes import API_KEY, FakeService, document, entry
from tests.sdk.test_async_client import AsyncFake


def _unit(variant: str) -> str:
    config = sharpen.core.parse_experiment(entry())
    return next(
        f"u{i}" for i in range(1000) if sharpen.core.evaluate(config, f"u{i}").variant == variant
    )


def test_expose_false_logs_the_exposure_only_when_exposed(
    service: FakeService, make_client: Any
) -> None:
    client = make_client()
    unit = _unit("candidate")
    answer = client.assign("fraud-v7", unit, {"country": "US"}, expose=False)
    assert (answer.variant, answer.reason, answer.in_experiment) == ("candidate", "assigned", True)
    assert answer.payload["model"] == "fraud-v7"
    assert client.stats.exposures_pending == 0
    assert client.expose(answer) is True
    assert client.expose(answer) is False  # deduplicated like assign()'s own
    assert client.assign("fraud-v7", unit).in_experiment  # already exposed: nothing new
    assert client.flush()
    (exposure,) = service.exposures()
    assert (exposure["unit_id"], exposure["variant"], exposure["version"]) == (unit, "candidate", 2)
    assert exposure["attributes"] == {"country": "US"}


def test_expose_ignores_answers_outside_the_experiment(make_client: Any) -> None:
    client = make_client()
    assert client.expose(client.assign("unknown", "u1", expose=False)) is False
    assert client.expose(client.assign("fraud-v7", "u1")) is False  # exposed already by assign
    assert client.stats.exposures_pending == 1


def test_overrides_answer_the_forced_variant_and_are_never_exposed(
    service: FakeService, make_client: Any
) -> None:
    client = make_client(overrides={"fraud-v7": "baseline", "not-yet": "on"})
    for i in range(20):
        answer = client.assign("fraud-v7", f"u{i}")
        assert (answer.variant, answer.reason, answer.in_experiment) == (
            "baseline",
            "override",
            False,
        )
        assert answer.payload["model"] == "fraud-v6"
    assert client.assign("not-yet", "u1").variant == "on"  # not in the config: still forced
    client.force("fraud-v7", None)
    assert client.assign("fraud-v7", _unit("candidate")).reason == "assigned"
    client.force("fraud-v7", "candidate")
    assert client.assign("fraud-v7", _unit("baseline")).variant == "candidate"
    # A new config keeps the override.
    service.set_config(document(entry(version=3), etag='"v3"'))
    assert client.refresh()
    assert client.assign("fraud-v7", "u1").reason == "override"
    assert client.flush()
    assert len(service.exposures()) == 1  # the one assigned answer above


def test_overrides_win_in_remote_mode_without_a_request(
    service: FakeService, make_client: Any
) -> None:
    client = make_client(mode="remote", overrides={"fraud-v7": "candidate"})
    answer = client.assign("fraud-v7", "u1")
    assert (answer.variant, answer.reason) == ("candidate", "override")
    assert service.posted("/v1/assign") == []


@pytest.mark.parametrize("overrides", [{"fraud-v7": ""}, {"": "a"}, {"fraud-v7": 3}])
def test_bad_overrides_are_refused_by_name(make_client: Any, overrides: Any) -> None:
    with pytest.raises(ValueError, match="overrides"):
        make_client(overrides=overrides)


async def test_async_client_expose_and_force(service: FakeService) -> None:
    async with AsyncClient(
        "http://sharpen.test",
        API_KEY,
        transport=AsyncFake(service).transport(),
        poll_interval=None,
        flush_interval=3600.0,
        retry=FAST_RETRY,
    ) as client:
        unit = _unit("candidate")
        answer = await client.assign("fraud-v7", unit, expose=False)
        assert client.stats.exposures_pending == 0
        assert client.expose(answer)
        client.force("fraud-v7", "baseline")
        forced = await client.assign("fraud-v7", unit)
        assert (forced.variant, forced.reason) == ("baseline", "override")
        assert await client.flush()
    assert len(service.exposures()) == 1
