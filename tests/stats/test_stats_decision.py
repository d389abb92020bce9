"""The decision rule, case by case."""

from __future__ import annotations

import pytest

from service.stats import Decision, GuardrailResult, GuardrailStatus, MetricStatus, decide


def _guard(
    status: GuardrailStatus, segment: dict[str, str] | None = None, metric: str = "recall"
) -> GuardrailResult:
    return GuardrailResult(
        metric=metric,
        variant="candidate",
        segment=segment,
        direction="increase",
        margin=0.02,
        alpha=0.01,
        estimate=-0.01,
        ci=(-0.03, 0.01),
        p_value=0.5,
        status=status,
    )


def _decide(
    primary: MetricStatus,
    guards: list[GuardrailResult],
    *,
    srm_ok: bool = True,
    days_elapsed: float = 15,
    max_sample_reached: bool = False,
) -> Decision:
    return decide(
        primary_status=primary,
        guardrails=guards,
        srm_ok=srm_ok,
        days_elapsed=days_elapsed,
        min_days=14,
        max_sample_reached=max_sample_reached,
    )


def test_ship_when_everything_holds() -> None:
    d = _decide("better", [_guard("ok"), _guard("inconclusive", {"device": "mobile"})])
    assert d.action == "ship"
    assert any("significantly better" in r for r in d.reasons)


@pytest.mark.parametrize("segment", [None, {"country": "CA"}])
def test_rollback_on_any_breach(segment: dict[str, str] | None) -> None:
    d = _decide("better", [_guard("ok"), _guard("breached", segment)])
    assert d.action == "rollback"
    assert "breached" in d.reasons[0] and "recall" in d.reasons[0]
    if segment:
        assert "country=CA" in d.reasons[0]


def test_no_ship_without_clean_srm() -> None:
    d = _decide("better", [_guard("ok")], srm_ok=False)
    assert d.action == "continue"
    assert any("sample ratio mismatch" in r for r in d.reasons)


def test_no_ship_before_the_minimum_days() -> None:
    d = _decide("better", [_guard("ok")], days_elapsed=3)
    assert d.action == "continue"
    assert any("3 of the minimum 14 days" in r for r in d.reasons)


@pytest.mark.parametrize("status", ["inconclusive", "warning"])
def test_overall_guardrail_must_be_ok_to_ship(status: GuardrailStatus) -> None:
    d = _decide("better", [_guard(status)])
    assert d.action == "continue"
    assert any("recall" in r for r in d.reasons)


def test_overall_harm_within_the_margin_is_non_inferior() -> None:
    within = GuardrailResult(
        metric="latency",
        variant="candidate",
        segment=None,
        direction="decrease",
        margin=0.10,
        alpha=0.01,
        estimate=0.014,
        ci=(0.005, 0.024),
        p_value=0.001,
        status="warning",
    )
    assert _decide("better", [within]).action == "ship"
    beyond = GuardrailResult(
        metric="latency",
        variant="candidate",
        segment=None,
        direction="decrease",
        margin=0.10,
        alpha=0.01,
        estimate=0.06,
        ci=(0.01, 0.12),
        p_value=0.001,
        status="warning",
    )
    assert _decide("better", [beyond]).action == "continue"


def test_segment_warning_does_not_block_but_is_reported() -> None:
    d = _decide("better", [_guard("ok"), _guard("warning", {"device": "tv"})])
    assert d.action == "ship"
    assert any("device=tv" in r for r in d.reasons)


def test_stop_at_max_sample_without_a_win() -> None:
    d = _decide("inconclusive", [_guard("ok")], max_sample_reached=True)
    assert d.action == "stop"
    assert d.reasons[0] == "planned maximum sample reached without a win"
    waiting = _decide("better", [_guard("ok")], max_sample_reached=True, days_elapsed=10)
    assert waiting.action == "continue"  # a win waits for the minimum days


def test_stop_when_primary_is_significantly_worse() -> None:
    d = _decide("worse", [_guard("ok")])
    assert d.action == "stop"
    assert "significantly worse" in d.reasons[0]


def test_continue_says_why() -> None:
    d = _decide("inconclusive", [_guard("ok")])
    assert d.action == "continue"
    assert d.to_dict() == {
        "action": "continue",
        "reasons": ["primary metric is not yet significantly better"],
    }
