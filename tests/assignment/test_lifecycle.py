"""Lifecycle changes reach /v1/assign in every process through the config cache."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient

from service.assignment import ConfigCache
from service.settings import Settings
from service.spec import parse_spec
from service.store import ExperimentStore, RedisSettings, close, connect, keys
from service.store.config_feed import ConfigFeed
from tests._wait import await_for, wait_for
from tests.assignment._helpers import act, assign_batch, launch, make_spec, wait_status
from tests.conftest import CLIENT, make_settings, running_app

UNITS = [f"user-{i}" for i in range(2000)]


def _reason(client: TestClient, key: str) -> str:
    body = {"experiment": key, "unit_id": "user-1"}
    return str(client.post("/v1/assign", json=body, headers=CLIENT).json()["reason"])


def _pubsub_only(redis_url: str) -> Settings:
    # A 30 s poll: within the test, only the pub/sub notification can deliver a change.
    return make_settings(redis_url, config_poll_interval_s=30)


def test_rollback_through_one_instance_serves_baseline_on_the_other(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    settings = _pubsub_only(redis_url)
    with running_app(settings) as one, running_app(settings) as two:
        launch(one, "roll")
        wait_status(two, "roll", "running")
        before = assign_batch(two, "roll", UNITS)
        assert {x["variant"] for x in before} == {"baseline", "candidate"}

        act(one, "roll", "rollback")
        wait_for(
            lambda: _reason(two, "roll"),
            until=lambda reason: reason == "rolled_back",
            what="the other instance to serve the rollback",
            interval_s=0.005,
        )
        exposures_then = redis_sync.xlen(keys.exposures_stream("roll"))
        after = assign_batch(two, "roll", UNITS)
    assert all(
        x
        == {
            "experiment": "roll",
            "variant": "baseline",
            "payload": {"model": "v6"},
            "in_experiment": False,
            "reason": "rolled_back",
        }
        for x in after
    )
    # Nobody is exposed any more.
    assert redis_sync.xlen(keys.exposures_stream("roll")) == exposures_then


def test_ship_through_one_instance_serves_the_shipped_variant_on_the_other(
    redis_url: str,
) -> None:
    settings = _pubsub_only(redis_url)
    with running_app(settings) as one, running_app(settings) as two:
        launch(one, "shipit")
        wait_status(two, "shipit", "running")
        act(one, "shipit", "ship", variant="candidate")
        wait_for(
            lambda: _reason(two, "shipit"),
            until=lambda reason: reason == "shipped",
            what="the other instance to serve the ship",
            interval_s=0.005,
        )
        after = assign_batch(two, "shipit", UNITS)
        config = two.get("/v1/config", headers=CLIENT).json()["experiments"]["shipit"]
    assert {(x["variant"], x["reason"], x["in_experiment"]) for x in after} == {
        ("candidate", "shipped", False)
    }
    assert all(x["payload"] == {"model": "v7"} for x in after)
    assert (config["status"], config["shipped_variant"]) == ("shipped", "candidate")


def test_stop_serves_the_baseline(api: TestClient) -> None:
    launch(api, "halt")
    act(api, "halt", "stop")
    wait_status(api, "halt", "stopped")
    got = assign_batch(api, "halt", UNITS[:100])
    assert {(x["variant"], x["reason"]) for x in got} == {("baseline", "stopped")}


async def test_polling_alone_picks_up_a_change(redis_url: str) -> None:
    """The safety net: with no subscription at all, the version poll reloads the config."""
    client = await connect(RedisSettings(url=redis_url))
    store = ExperimentStore(client)
    cache = ConfigCache(store, ConfigFeed(client), poll_interval_s=0.05, subscribe=False)
    try:
        await store.create(parse_spec(make_spec("polled")), actor="test")
        await cache.start()
        assert cache.current is not None
        assert cache.current.experiments["polled"].status == "draft"
        assert "polled" not in cache.current.served
        await store.transition("polled", "start", actor="test")
        await await_for(
            lambda: cache.current,
            until=lambda current: (
                current is not None and current.experiments["polled"].status == "running"
            ),
            what="the poll to reload the started experiment",
        )
        assert cache.current.experiments["polled"].status == "running"
        assert "polled" in cache.current.served
        assert cache.reloads == 2
    finally:
        await cache.stop()
        await close(client)
