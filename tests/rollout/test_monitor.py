"""The monitor's gate on a real Redis: it advances step by step by itself, holds on a
warning (and says so once), rolls back on a breach, and leaves a manual ramp to a person."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service.errors import Conflict
from service.monitor import Monitor, on_lifecycle, refresh_experiment_metrics
from service.runtime import Runtime
from service.spec import ExperimentSpec
from service.spec.sdk_config import sdk_entry
from tests.monitor._support import Receiver, Results, guardrail_row, results_doc, runtime_on
from tests.rollout._support import ramped_spec

HOUR = 3600.0


class Clock:
    """Real time plus a shift the test moves forward (the store stamps steps in real time)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


async def _start(rt: Runtime, **changes: Any) -> str:
    spec = ExperimentSpec.model_validate(ramped_spec(**changes))
    await rt.experiments.create(spec, actor="tester")
    started = await rt.experiments.transition(spec.key, "start", "tester")
    await on_lifecycle(rt, started, "tester")  # as the API does: announces the first step
    return spec.key


def _sample(rt: Runtime, name: str, key: str) -> float | None:
    return rt.metrics.sample(name, {"experiment": key})


async def test_a_good_candidate_advances_through_every_step_by_itself(redis_url: str) -> None:
    hooks = Receiver()
    clock = Clock()
    async with runtime_on(redis_url, hooks) as rt:
        key = await _start(rt)
        first = await rt.experiments.get(key)
        assert first.rollout is not None and first.rollout.step == 1
        assert sdk_entry(first)["traffic"] == 0.01
        doc = {"units": (600, 600)}
        monitor = Monitor(
            rt, results=Results(lambda _: results_doc(units=doc["units"])), clock=clock
        )

        report = await monitor.run_once()  # 1,200 units, no time: waits
        assert report.ramped == []
        clock.shift = HOUR + 1
        assert (await monitor.run_once()).ramped == []  # the time is there, the units not
        doc["units"] = (1000, 1000)
        assert (await monitor.run_once()).ramped == [key]
        record = await rt.experiments.get(key)
        assert record.rollout is not None
        assert (record.rollout.step, record.current_traffic, record.version) == (2, 0.05, 2)
        assert record.rollout.history[-1].units_at_start == 2000
        assert sdk_entry(record)["traffic"] == 0.05
        ramp = record.audit[-1]
        assert (ramp.action, ramp.actor, ramp.version) == ("ramp", "monitor", 2)
        assert ramp.detail["from_step"] == 1 and ramp.detail["to_step"] == 2
        assert ramp.detail["gate"] == "ready"
        assert "gate passed at step 1: 2,000 units" in ramp.detail["reason"]
        assert await rt.experiments.version_spec(key, 2) == record.spec

        await monitor.run_once()  # step 2 waits 6 hours
        assert (await rt.experiments.get(key)).rollout.step == 2  # type: ignore[union-attr]
        clock.shift += 6 * HOUR + 1
        assert (await monitor.run_once()).ramped == [key]
        clock.shift += 24 * HOUR + 1
        assert (await monitor.run_once()).ramped == [key]
        final = await rt.experiments.get(key)
        assert final.rollout is not None and final.rollout.step == 4
        assert sdk_entry(final)["traffic"] == 1.0 and final.status == "running"
        assert [a.action for a in final.audit] == ["create", "start", "ramp", "ramp", "ramp"]
        assert (await monitor.run_once()).ramped == []  # complete: nothing more

        await refresh_experiment_metrics(rt)
        assert _sample(rt, "sharpen_rollout_step", key) == 4
        assert _sample(rt, "sharpen_rollout_held", key) == 0
        assert rt.metrics.sample("sharpen_monitor_actions_total", {"action": "ramp"}) == 3
        assert rt.webhooks is not None
        await rt.webhooks.drain()
        steps = [r for r in hooks.requests if r.headers["X-Sharpen-Event"] == "rollout.step"]
        assert len(steps) == 4  # the start, then three ramps
        assert b'"step":1' in steps[0].read() and b'"traffic":0.01' in steps[0].read()
        assert b'"step":4' in steps[-1].read() and b'"from_step":3' in steps[-1].read()


async def test_a_warning_holds_the_step_says_so_once_and_the_step_resumes(redis_url: str) -> None:
    hooks = Receiver()
    clock = Clock()
    guardrails = [guardrail_row("warning", {"country": "DE"}, ci=(-0.05, -0.002))]
    async with runtime_on(redis_url, hooks) as rt:
        key = await _start(rt)
        monitor = Monitor(
            rt,
            results=Results(lambda _: results_doc(guardrails=guardrails, units=(3000, 3000))),
            clock=clock,
        )
        clock.shift = 2 * HOUR
        first, second = await monitor.run_once(), await monitor.run_once()
        assert first.ramped == second.ramped == []
        assert f"rollout_held:{key}:1" in first.alerts
        assert not [a for a in second.alerts if a.startswith("rollout_held")]
        assert (await rt.experiments.get(key)).current_traffic == 0.01
        await refresh_experiment_metrics(rt)
        assert _sample(rt, "sharpen_rollout_held", key) == 1
        assert _sample(rt, "sharpen_rollout_step", key) == 1
        assert rt.metrics.sample("sharpen_monitor_actions_total", {"action": "rollout_held"}) == 1
        assert rt.webhooks is not None
        await rt.webhooks.drain()
        assert hooks.events() == ["rollout.step", "rollout.held"]  # the start, then the hold
        assert b"country=DE" in hooks.requests[-1].read()

        guardrails[0] = guardrail_row("ok", {"country": "DE"}, estimate=0.0, ci=(-0.01, 0.01))
        assert (await monitor.run_once()).ramped == [key]
        await monitor.run_once()
        await refresh_experiment_metrics(rt)
        assert _sample(rt, "sharpen_rollout_held", key) == 0
        assert _sample(rt, "sharpen_rollout_step", key) == 2


async def test_a_breach_during_the_first_step_rolls_back_without_ramping(redis_url: str) -> None:
    clock = Clock()
    async with runtime_on(redis_url) as rt:
        key = await _start(rt)
        doc = results_doc(guardrails=[guardrail_row("breached")], units=(3000, 3000))
        clock.shift = 2 * HOUR  # the gate's time and units are there: the breach wins
        report = await Monitor(rt, results=Results(doc), clock=clock).run_once()
        assert report.rolled_back == [key] and report.ramped == []
        record = await rt.experiments.get(key)
        assert record.status == "rolled_back"
        assert record.rollout is not None and record.rollout.step == 1
        assert [a.action for a in record.audit] == ["create", "start", "rollback"]


async def test_without_auto_advance_the_monitor_waits_for_a_person(redis_url: str) -> None:
    clock = Clock()
    async with runtime_on(redis_url) as rt:
        steps = ramped_spec()["rollout"]["steps"]
        key = await _start(rt, rollout={"steps": steps, "auto_advance": False})
        monitor = Monitor(rt, results=Results(results_doc(units=(3000, 3000))), clock=clock)
        clock.shift = 48 * HOUR
        for _ in range(3):
            assert (await monitor.run_once()).ramped == []
        await refresh_experiment_metrics(rt)
        assert _sample(rt, "sharpen_rollout_held", key) == 0  # waiting for a person: not held
        assert (await rt.experiments.get(key)).current_traffic == 0.01


async def test_two_ramps_from_the_same_step_move_it_once(redis_url: str) -> None:
    async with runtime_on(redis_url) as rt:
        key = await _start(rt)
        outcomes = await asyncio.gather(
            *(rt.experiments.ramp(key, f"p{i}", from_step=1, to_step=2, units_at_start=10)
              for i in range(5)),
            return_exceptions=True,
        )  # fmt: skip
        done = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(done) == 1 and len(refused) == 4
        record = await rt.experiments.get(key)
        assert record.rollout is not None and len(record.rollout.history) == 2
        assert [a.action for a in record.audit].count("ramp") == 1
        with pytest.raises(Conflict, match="only goes up"):
            await rt.experiments.ramp(key, "p", from_step=2, to_step=2, units_at_start=0)
        with pytest.raises(Conflict, match="only goes up"):
            await rt.experiments.ramp(key, "p", from_step=2, to_step=5, units_at_start=0)
        before = await rt.experiments.config_version()
        await rt.experiments.ramp(key, "p", from_step=2, to_step=4, units_at_start=0)
        assert await rt.experiments.config_version() == before + 1  # every SDK hears of it
        await rt.experiments.transition(key, "stop", "tester")
        with pytest.raises(Conflict, match="stopped"):
            await rt.experiments.ramp(key, "p", from_step=4, to_step=4, units_at_start=0)
