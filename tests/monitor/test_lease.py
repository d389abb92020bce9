"""Several monitors on one Redis: one leads each experiment, one rollback, one audit entry."""

from __future__ import annotations

import asyncio

from service.monitor import LEASE_PURPOSE, Monitor
from service.store import RedisSettings, close, connect
from service.store.monitor_state import MonitorState
from tests._wait import await_for
from tests.monitor._support import (
    Receiver,
    Results,
    guardrail_row,
    results_doc,
    runtime_on,
    start_experiment,
)


async def test_lease_is_taken_renewed_and_released_only_by_its_holder(redis_url: str) -> None:
    redis = await connect(RedisSettings(url=redis_url))
    try:
        state = MonitorState(redis)
        assert await state.acquire("exp", LEASE_PURPOSE, "token-a", 60_000)
        assert not await state.acquire("exp", LEASE_PURPOSE, "token-b", 60_000)
        assert await state.acquire("exp", LEASE_PURPOSE, "token-a", 60_000)  # renewal
        assert not await state.release("exp", LEASE_PURPOSE, "token-b")  # not its lease
        assert await state.holder("exp", LEASE_PURPOSE) == "token-a"
        assert await state.release("exp", LEASE_PURPOSE, "token-a")
        assert await state.holder("exp", LEASE_PURPOSE) is None
        assert await state.acquire("exp", LEASE_PURPOSE, "token-b", 50)
        # the holder died: its lease lapses
        await await_for(
            lambda: state.holder("exp", LEASE_PURPOSE),
            until=lambda holder: holder is None,
            what="the 50 ms lease to lapse",
            interval_s=0.01,
        )
        assert await state.acquire("exp", LEASE_PURPOSE, "token-a", 60_000)
        assert await state.holder("exp", LEASE_PURPOSE) == "token-a"
    finally:
        await close(redis)


async def test_two_monitors_roll_back_once(redis_url: str) -> None:
    breached = results_doc(
        guardrails=[
            guardrail_row("ok"),
            guardrail_row("breached", {"country": "DE"}),
            guardrail_row("ok", {"country": "US"}, estimate=0.02, ci=(0.0, 0.04)),
        ]
    )
    hooks_a, hooks_b = Receiver(), Receiver()
    async with (
        runtime_on(redis_url, hooks_a) as rt_a,
        runtime_on(redis_url, hooks_b) as rt_b,
    ):
        key = await start_experiment(rt_a)
        results_a, results_b = Results(breached), Results(breached)
        monitor_a = Monitor(rt_a, results=results_a, interval_s=0.1)
        monitor_b = Monitor(rt_b, results=results_b, interval_s=0.1)
        for _ in range(3):
            await asyncio.gather(monitor_a.run_once(), monitor_b.run_once())
        await rt_a.webhooks.drain()  # type: ignore[union-attr]
        await rt_b.webhooks.drain()  # type: ignore[union-attr]

        record = await rt_a.experiments.get(key)
        assert record.status == "rolled_back"
        rollbacks = [a for a in record.audit if a.action == "rollback"]
        assert len(rollbacks) == 1
        assert rollbacks[0].actor == "monitor"
        assert rollbacks[0].detail["metric"] == "recall"
        assert rollbacks[0].detail["segment"] == {"country": "DE"}
        assert rollbacks[0].detail["relative"] == {"estimate": -0.04, "ci": [-0.07, -0.01]}
        assert "country=DE" in rollbacks[0].detail["reason"]

        # Only the leader analysed it; the other saw the lease and stayed out.
        assert len(results_a.calls) + len(results_b.calls) == 1
        done = [
            m.sample("sharpen_monitor_actions_total", {"action": "rollback"}) or 0.0
            for m in (rt_a.metrics, rt_b.metrics)
        ]
        assert sorted(done) == [0.0, 1.0]
        entries = await rt_a.journal.entries()  # type: ignore[union-attr]
        assert [(e.experiment, e.status, e.actor) for e in entries] == [
            (key, "rolled_back", "monitor")
        ]
        events = sorted(hooks_a.events() + hooks_b.events())
        assert events == ["experiment.rolled_back", "guardrail.breached"]
        # The leader let go of the lease once the experiment ended.
        assert await MonitorState(rt_a.redis).holder(key, LEASE_PURPOSE) is None


async def test_two_running_loops_never_double_act(redis_url: str) -> None:
    """The components as the workers run them: started, a few passes, stopped."""
    async with runtime_on(redis_url) as rt_a, runtime_on(redis_url) as rt_b:
        keys = [await start_experiment(rt_a, key=f"exp-{i}") for i in range(3)]
        doc = results_doc(guardrails=[guardrail_row("breached", {"country": "FR"})])
        monitors = [
            Monitor(rt_a, results=Results(doc), interval_s=0.05),
            Monitor(rt_b, results=Results(doc), interval_s=0.05),
        ]
        for m in monitors:
            await m.start()
        await await_for(
            lambda: rt_a.experiments.get_many(keys),
            until=lambda records: all(r.status == "rolled_back" for r in records),
            what="every experiment rolled back",
        )

        def passes() -> list[float]:
            return [rt.metrics.sample("sharpen_monitor_runs_total") or 0.0 for rt in (rt_a, rt_b)]

        then = passes()
        # more passes by both monitors: nothing left to do
        await await_for(
            passes,
            until=lambda now: all(n >= t + 3 for n, t in zip(now, then, strict=True)),
            what="three more passes of each monitor",
        )
        for m in monitors:
            await m.stop()
        for key in keys:
            record = await rt_a.experiments.get(key)
            assert record.status == "rolled_back"
            assert [a.action for a in record.audit] == ["create", "start", "rollback"]
        total = sum(
            rt.metrics.sample("sharpen_monitor_actions_total", {"action": "rollback"}) or 0
            for rt in (rt_a, rt_b)
        )
        assert total == 3
        assert len(await rt_a.journal.entries()) == 3  # type: ignore[union-attr]
