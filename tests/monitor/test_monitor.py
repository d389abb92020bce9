"""The monitor's decisions on one experiment: alert, roll back, publish, journal."""

from __future__ import annotations

import time
from typing import Any

from service.monitor import LEASE_PURPOSE, Monitor, refresh_experiment_metrics
from service.monitor._loop import JOURNAL_GRACE_S
from service.runtime import Runtime
from service.store.monitor_state import MonitorState
from tests.monitor._support import (
    Receiver,
    Results,
    guardrail_row,
    results_doc,
    runtime_on,
    start_experiment,
)

GUARDRAIL = "sharpen_guardrail_status"
EFFECT = "sharpen_guardrail_relative_effect"


def _labels(segment: str, **extra: str) -> dict[str, str]:
    return {
        "experiment": "fraud-v7",
        "metric": "recall",
        "variant": "candidate",
        "segment": segment,
        **extra,
    }


async def _drain(runtime: Runtime) -> None:
    assert runtime.webhooks is not None
    await runtime.webhooks.drain()


async def test_breach_in_one_segment_rolls_back_and_publishes(redis_url: str) -> None:
    hooks = Receiver()
    async with runtime_on(redis_url, hooks) as rt:
        key = await start_experiment(rt)
        doc = results_doc(
            guardrails=[
                guardrail_row("ok", None, estimate=0.01, ci=(-0.005, 0.02)),
                guardrail_row("breached", {"country": "DE"}),
                guardrail_row("ok", {"country": "US"}, estimate=0.02, ci=(0.0, 0.04)),
            ]
        )
        report = await Monitor(rt, results=Results(doc)).run_once()
        assert report.rolled_back == [key]
        assert report.journaled == [key]
        assert (await rt.experiments.get(key)).status == "rolled_back"

        await refresh_experiment_metrics(rt)
        m = rt.metrics
        assert m.sample(GUARDRAIL, _labels("country=DE")) == 3
        assert m.sample(GUARDRAIL, _labels("country=US")) == 0
        assert m.sample(GUARDRAIL, _labels("all")) == 0
        assert m.sample(EFFECT, _labels("country=DE", bound="estimate")) == -0.04
        assert m.sample(EFFECT, _labels("country=DE", bound="lower")) == -0.07
        assert m.sample(EFFECT, _labels("country=DE", bound="upper")) == -0.01
        status = {"experiment": key}
        assert m.sample("sharpen_experiment_status", {**status, "status": "rolled_back"}) == 1
        assert m.sample("sharpen_experiment_status", {**status, "status": "running"}) == 0
        assert m.sample("sharpen_srm_p_value", status) == 0.4
        assert m.sample("sharpen_experiment_units", {**status, "variant": "candidate"}) == 1000
        analysed = m.sample("sharpen_last_analysis_timestamp_seconds", status)
        assert analysed is not None and abs(analysed - time.time()) < 60
        await _drain(rt)
        assert hooks.events() == ["guardrail.breached", "experiment.rolled_back"]


async def test_breach_without_auto_rollback_alerts_once(redis_url: str) -> None:
    hooks = Receiver()
    async with runtime_on(redis_url, hooks) as rt:
        key = await start_experiment(rt, guardrails={"auto_rollback": False})
        doc = results_doc(guardrails=[guardrail_row("breached", {"country": "DE"})])
        monitor = Monitor(rt, results=Results(doc))
        first = await monitor.run_once()
        second = await monitor.run_once()
        assert first.alerts == [f"breached:{key}:recall:country=DE"]
        assert second.alerts == [] and second.analysed == [key]
        assert (await rt.experiments.get(key)).status == "running"
        await _drain(rt)
        assert hooks.events() == ["guardrail.breached"]
        body = hooks.requests[0].read()
        assert b'"auto_rollback":false' in body
        assert rt.metrics.sample("sharpen_monitor_actions_total", {"action": "rollback"}) == 0


async def test_warning_alerts_only(redis_url: str) -> None:
    hooks = Receiver()
    async with runtime_on(redis_url, hooks) as rt:
        key = await start_experiment(rt)
        doc = results_doc(
            guardrails=[guardrail_row("warning", {"country": "DE"}, ci=(-0.05, 0.01))]
        )
        monitor = Monitor(rt, results=Results(doc))
        await monitor.run_once()
        await monitor.run_once()
        assert (await rt.experiments.get(key)).status == "running"
        assert rt.metrics.sample("sharpen_monitor_actions_total", {"action": "warning"}) == 1
        await refresh_experiment_metrics(rt)
        assert rt.metrics.sample(GUARDRAIL, _labels("country=DE")) == 2
        await _drain(rt)
        assert hooks.requests == []  # warnings go to Prometheus, not to webhooks


async def test_sample_ratio_mismatch_sends_one_webhook(redis_url: str) -> None:
    hooks = Receiver()
    async with runtime_on(redis_url, hooks) as rt:
        key = await start_experiment(rt)
        monitor = Monitor(rt, results=Results(results_doc(srm_ok=False, units=(1200, 800))))
        await monitor.run_once()
        await monitor.run_once()
        await _drain(rt)
        assert hooks.events() == ["srm.mismatch"]
        assert (await rt.experiments.get(key)).status == "running"
        await refresh_experiment_metrics(rt)
        assert rt.metrics.sample("sharpen_srm_ok", {"experiment": key}) == 0
        assert rt.metrics.sample("sharpen_srm_p_value", {"experiment": key}) == 1e-6


async def test_a_failed_analysis_is_counted_and_changes_nothing(redis_url: str) -> None:
    async def broken(runtime: Runtime, key: str) -> dict[str, Any]:
        raise RuntimeError("stats engine exploded")

    async with runtime_on(redis_url) as rt:
        key = await start_experiment(rt)
        report = await Monitor(rt, results=broken).run_once()
        assert report.failed == [key]
        assert rt.metrics.sample("sharpen_monitor_errors_total", {"experiment": key}) == 1
        assert (await rt.experiments.get(key)).status == "running"
        await refresh_experiment_metrics(rt)
        # No analysis, no timestamp: the AnalysisStale alert counts from the start instead.
        assert (
            rt.metrics.sample("sharpen_last_analysis_timestamp_seconds", {"experiment": key})
            is None
        )
        started = rt.metrics.sample(
            "sharpen_experiment_started_timestamp_seconds", {"experiment": key}
        )
        assert started is not None


async def test_stop_releases_the_leases(redis_url: str) -> None:
    async with runtime_on(redis_url) as rt:
        key = await start_experiment(rt)
        monitor = Monitor(rt, results=Results(results_doc()))
        await monitor.run_once()
        state = MonitorState(rt.redis)
        assert await state.holder(key, LEASE_PURPOSE) == monitor.token
        await monitor.start()
        await monitor.stop()
        assert await state.holder(key, LEASE_PURPOSE) is None


async def test_an_ended_experiment_missing_from_the_journal_is_journaled(redis_url: str) -> None:
    now = [time.time()]
    async with runtime_on(redis_url, clock=lambda: now[0]) as rt:
        key = await start_experiment(rt)
        # Ended behind the API's back (its journal hook never ran).
        await rt.experiments.transition(key, "stop", "alice", detail={"reason": "flat"})
        monitor = Monitor(rt, results=Results(results_doc()), clock=lambda: now[0])
        assert (await monitor.run_once()).journaled == []  # the API gets time to do it
        now[0] += JOURNAL_GRACE_S + 1
        assert (await monitor.run_once()).journaled == [key]
        entry = await rt.journal.get(key)  # type: ignore[union-attr]
        assert entry is not None
        assert (entry.status, entry.actor, entry.decision.reasons) == ("stopped", "alice", ["flat"])
        assert (await monitor.run_once()).journaled == []


async def test_series_of_ended_experiments_expire(redis_url: str) -> None:
    async with runtime_on(redis_url, metrics_ended_retention_s=60) as rt:
        key = await start_experiment(rt)
        await Monitor(rt, results=Results(results_doc())).run_once()
        await rt.experiments.transition(key, "stop", "alice")
        record = await rt.experiments.get(key)
        assert record.ended_at is not None
        await refresh_experiment_metrics(rt, now=record.ended_at + 30)
        assert rt.metrics.sample(GUARDRAIL, _labels("all")) == 0
        await refresh_experiment_metrics(rt, now=record.ended_at + 61)
        assert rt.metrics.sample(GUARDRAIL, _labels("all")) is None
        status = {"experiment": key, "status": "stopped"}
        assert rt.metrics.sample("sharpen_experiment_status", status) == 1


async def test_aggregation_lag_is_the_age_of_the_oldest_unacknowledged_entry(
    redis_url: str,
) -> None:
    from service.store import keys
    from service.store.aggregation import GROUP

    async with runtime_on(redis_url) as rt:
        state, redis = MonitorState(rt.redis), rt.redis
        stream = keys.events_stream("lagging")
        assert await state.oldest_unprocessed("lagging", GROUP) is None  # no stream
        await redis.xadd(stream, {"e": "1"}, id="1000000-0")
        await redis.xadd(stream, {"e": "2"}, id="2000000-0")
        await redis.xadd(stream, {"e": "3"}, id="3000000-0")
        assert await state.oldest_unprocessed("lagging", GROUP) == 1000.0  # no reader yet
        await redis.xgroup_create(stream, GROUP, id="0")
        await redis.xreadgroup(GROUP, "w1", {stream: ">"}, count=2)
        assert await state.oldest_unprocessed("lagging", GROUP) == 1000.0  # pending
        await redis.xack(stream, GROUP, "1000000-0", "2000000-0")
        assert await state.oldest_unprocessed("lagging", GROUP) == 3000.0  # undelivered
        await redis.xreadgroup(GROUP, "w1", {stream: ">"})
        await redis.xack(stream, GROUP, "3000000-0")
        assert await state.oldest_unprocessed("lagging", GROUP) is None  # caught up

        key = await start_experiment(rt)
        await redis.xadd(
            keys.events_stream(key), {"e": "1"}, id=f"{int(time.time() * 1000) - 10_000}-0"
        )
        await Monitor(rt, results=Results(results_doc())).run_once()
        await refresh_experiment_metrics(rt)
        lag = rt.metrics.sample("sharpen_aggregation_lag_seconds", {"experiment": key})
        assert lag is not None and 9 < lag < 60
        length = {"experiment": key, "stream": "events"}
        assert rt.metrics.sample("sharpen_stream_length", length) == 1
