"""The gate between steps (pure): what it waits for, what holds it, when it passes."""

from __future__ import annotations

from typing import Any

from service.rollout import Gate, rollout_gate, rollout_section
from tests.monitor._support import guardrail_row, results_doc
from tests.rollout._support import ramped_spec, record_at

T0 = 1_000_000.0
HOUR = 3600.0


def _gate(
    entries: list[tuple[int, float, int]], doc: dict[str, Any], now: float, **spec: Any
) -> Gate:
    record = record_at(ramped_spec(**spec), entries, started_at=T0)
    gate = rollout_gate(record, doc, now)
    assert gate is not None
    return gate


def test_first_step_waits_for_its_time_and_its_units() -> None:
    gate = _gate([(1, T0, 0)], results_doc(units=(600, 600)), T0 + 20 * 60)
    assert (gate.state, gate.advance, gate.step, gate.traffic) == ("waiting", False, 1, 0.01)
    assert gate.next_traffic == 0.05
    assert gate.step_units == 1200
    assert gate.waiting_for == (
        "40m more at this step (1h in all)",
        "800 more units at this step (1,200 of 2,000)",
    )
    assert gate.held_by == ()


def test_the_gate_passes_when_time_units_srm_and_guardrails_allow() -> None:
    gate = _gate([(1, T0, 0)], results_doc(units=(1000, 1000)), T0 + HOUR)
    assert (gate.state, gate.advance, gate.waiting_for) == ("ready", True, ())


def test_units_count_from_the_steps_start() -> None:
    entries = [(1, T0, 0), (2, T0 + HOUR, 2100)]
    doc = results_doc(units=(2000, 2000))
    gate = _gate(entries, doc, T0 + HOUR + 7 * HOUR)
    assert (gate.step, gate.step_units, gate.state) == (2, 1900, "ready")
    assert gate.step_seconds == 7 * HOUR


def test_a_warning_in_a_segment_holds_the_step_and_says_so() -> None:
    doc = results_doc(
        units=(5000, 5000),
        guardrails=[
            guardrail_row("ok"),
            guardrail_row("warning", {"country": "DE"}, estimate=-0.03, ci=(-0.05, -0.004)),
        ],
    )
    gate = _gate([(1, T0, 0)], doc, T0 + 2 * HOUR)
    assert (gate.state, gate.advance) == ("held", False)
    assert gate.held_by == (
        "guardrail recall warning for candidate in country=DE: relative -3.0% "
        "(guardrail CI -5.0% to -0.4%)",
    )
    assert gate.waiting_for == ()


def test_a_warning_holds_even_while_still_waiting() -> None:
    doc = results_doc(units=(10, 10), guardrails=[guardrail_row("warning")])
    gate = _gate([(1, T0, 0)], doc, T0 + 60)
    assert gate.state == "held" and len(gate.waiting_for) == 2


def test_a_breach_and_a_sample_ratio_mismatch_hold_too() -> None:
    breached = results_doc(units=(5000, 5000), guardrails=[guardrail_row("breached")])
    assert _gate([(1, T0, 0)], breached, T0 + 2 * HOUR).state == "held"
    srm = results_doc(units=(6000, 4000), srm_ok=False)
    gate = _gate([(1, T0, 0)], srm, T0 + 2 * HOUR)
    assert gate.state == "held"
    assert gate.held_by == ("sample ratio mismatch (p < 0.0001): the split is not as configured",)


def test_without_auto_advance_a_passed_gate_waits_for_a_person() -> None:
    steps = ramped_spec()["rollout"]["steps"]
    gate = _gate(
        [(1, T0, 0)],
        results_doc(units=(1000, 1000)),
        T0 + HOUR,
        rollout={"steps": steps, "auto_advance": False},
    )
    assert (gate.state, gate.advance) == ("ready", False)
    assert gate.waiting_for == ("a person to ramp it: `sharpen ramp fraud-v7` or the dashboard",)


def test_the_last_step_is_complete_and_ended_experiments_have_no_gate() -> None:
    entries = [(1, T0, 0), (2, T0 + HOUR, 2000), (4, T0 + 2 * HOUR, 3000)]
    gate = _gate(entries, results_doc(guardrails=[guardrail_row("warning")]), T0 + 3 * HOUR)
    assert (gate.state, gate.advance, gate.next_traffic, gate.traffic) == (
        "complete", False, None, 1.0,
    )  # fmt: skip
    ended = record_at(ramped_spec(), [(1, T0, 0)], status="rolled_back")
    assert rollout_gate(ended, results_doc(), T0 + HOUR) is None


def test_the_results_section_shows_each_step_and_marks_the_timeline() -> None:
    entries = [(1, T0, 0), (2, T0 + HOUR, 2100), (4, T0 + 8 * HOUR, 2600)]
    record = record_at(ramped_spec(), entries, started_at=T0)
    hour0 = int(T0 // 3600) * 3600
    doc = results_doc(units=(1500, 1500))
    doc["timeline"] = [{"hour": hour0 + h * 3600, "units": {}} for h in (0, 1, 5, 8, 9)]
    section = rollout_section(record, doc, T0 + 9 * HOUR)
    assert section is not None
    assert (section["step"], section["steps"], section["traffic"]) == (4, 4, 1.0)
    schedule = section["schedule"]
    assert [s["state"] for s in schedule] == ["done", "done", "skipped", "current"]
    assert [s["units"] for s in schedule] == [2100, 500, None, 400]
    assert schedule[0]["ended_at"] == schedule[1]["started_at"] == T0 + HOUR
    assert schedule[3]["ended_at"] is None
    assert [s["min_duration"] for s in schedule] == ["1h", "6h", "1d", "0s"]
    assert section["gate"]["state"] == "complete"
    # each hour carries the step in force at its end
    steps = [p["step"] for p in doc["timeline"]]
    hours_in = [(p["hour"] + 3600 - T0) / 3600 for p in doc["timeline"]]
    expected = [1 if h <= 1 else 2 if h <= 8 else 4 for h in hours_in]
    assert steps == expected
    assert [p["traffic"] for p in doc["timeline"]] == [{1: 0.01, 2: 0.05, 4: 1.0}[s] for s in steps]
