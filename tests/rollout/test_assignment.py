"""Raising traffic never moves an included unit to another variant and never drops it.

Property-based over every step sequence: the record at each step of a ramp goes through
the service's ``sdk_entry`` (what ``GET /v1/config`` serves) into the SDK's pure
evaluation, exactly as a client sees it.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.spec.sdk_config import sdk_entry
from sharpen.core import evaluate, parse_experiment
from tests.rollout._support import ramped_spec, record_at

UNITS = [f"user-{i}" for i in range(600)] + ["ü-1", "用户-2", "", "x" * 300]

shares = st.integers(min_value=1, max_value=10_000).map(lambda n: n / 10_000)


@st.composite
def ramps(draw: st.DrawFn) -> tuple[list[float], list[int], str]:
    steps = sorted(set(draw(st.lists(shares, min_size=2, max_size=8))))
    if len(steps) < 2:
        steps = [steps[0] / 2, steps[0]]
    weights = draw(st.lists(st.integers(min_value=1, max_value=100), min_size=2, max_size=4))
    salt = draw(st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=12))
    return steps, weights, salt


def _spec(steps: list[float], weights: list[int], salt: str) -> dict[str, object]:
    variants = [{"key": f"v{i}", "weight": w} for i, w in enumerate(weights)]
    return ramped_spec(
        "ramp-prop",
        steps=[{"traffic": t} for t in steps],
        variants=variants,
        baseline="v0",
        traffic=steps[-1],
        salt=salt,
    )


@settings(max_examples=60, deadline=None)
@given(ramps())
def test_raising_traffic_keeps_every_included_unit_in_its_variant(
    ramp: tuple[list[float], list[int], str],
) -> None:
    steps, weights, salt = ramp
    spec = _spec(steps, weights, salt)
    seen: dict[str, str] = {}
    for number in range(1, len(steps) + 1):
        record = record_at(spec, [(n, 1000.0 * n, 0) for n in range(1, number + 1)])
        entry = parse_experiment(sdk_entry(record))
        assert entry.traffic == steps[number - 1]
        now = {}
        for unit in UNITS:
            answer = evaluate(entry, unit)
            if answer.in_experiment:
                now[unit] = answer.variant
        # never dropped, never moved: every unit in before is in now, in the same variant
        assert {u: now.get(u) for u in seen} == seen
        seen = now  # type: ignore[assignment]


@settings(max_examples=30, deadline=None)
@given(ramps(), st.data())
def test_a_jump_over_steps_keeps_them_too(
    ramp: tuple[list[float], list[int], str], data: st.DataObject
) -> None:
    """A person may ramp past steps (``sharpen ramp --to``): the same holds for any pair."""
    steps, weights, salt = ramp
    spec = _spec(steps, weights, salt)
    low = data.draw(st.integers(min_value=1, max_value=len(steps) - 1))
    high = data.draw(st.integers(min_value=low + 1, max_value=len(steps)))
    before = parse_experiment(sdk_entry(record_at(spec, [(low, 0.0, 0)])))
    after = parse_experiment(sdk_entry(record_at(spec, [(low, 0.0, 0), (high, 1.0, 0)])))
    for unit in UNITS:
        first = evaluate(before, unit)
        if first.in_experiment:
            assert evaluate(after, unit) == first


def test_the_config_serves_the_current_step_and_the_share_grows() -> None:
    """Not vacuous: units do enter at each step, about as many as the step's share."""
    spec = _spec([0.01, 0.1, 0.5], [1, 1], "grow")
    many = [f"u{i}" for i in range(20_000)]
    counts = []
    for number in (1, 2, 3):
        record = record_at(spec, [(n, float(n), 0) for n in range(1, number + 1)])
        entry = parse_experiment(sdk_entry(record))
        counts.append(sum(evaluate(entry, u).in_experiment for u in many))
    # binomial sd at 20,000 units is at most 71: 5 sd either side of the share
    for count, share in zip(counts, (0.01, 0.1, 0.5), strict=True):
        sd = (20_000 * share * (1 - share)) ** 0.5
        assert abs(count - 20_000 * share) < 5 * sd
