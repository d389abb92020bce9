"""service.format: one way to write each number, and nothing a person cannot read."""

from __future__ import annotations

import io
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from service import format as fmt
from service.cli._report_md import markdown_report
from service.cli._report_rich import render_report
from service.cli.plan import plan_sentences, render_plan
from service.demo.runner import summary
from service.ui.plots import ForestRow, MdePoint, TimePoint, forest_plot, mde_curve, units_plot
from service.ui.plots._svg import nice_ticks, tick_format

# What a person must never read: nan, inf, None, or a float printed with all its digits.
UNREADABLE = re.compile(r"\bnan\b|\binf\b|\bNone\b|\d\.\d{9,}|\d{12,}", re.IGNORECASE)

numbers = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=0, max_value=10**7),
)
fractions = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32))


def _interval() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"estimate": fractions, "ci": st.tuples(fractions, fractions)})


def _metric_row() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "metric": st.sampled_from(["precision", "recall"]),
            "role": st.sampled_from(["primary", "guardrail", "secondary"]),
            "variant": st.just("candidate"),
            "segment": st.one_of(st.none(), st.just({"country": "DE"})),
            "baseline": st.fixed_dictionaries({"units": numbers, "mean": numbers}),
            "treatment": st.fixed_dictionaries({"units": numbers, "mean": numbers}),
            "absolute": _interval(),
            "relative": _interval(),
            "p_value": fractions,
            "status": st.sampled_from(["better", "inconclusive", "worse"]),
        }
    )


def _guardrail_row() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "metric": st.just("latency_ms"),
            "variant": st.just("candidate"),
            "segment": st.one_of(st.none(), st.just({"country": "FR"})),
            "margin": fractions,
            "alpha": fractions,
            "relative": _interval(),
            "p_value": fractions,
            "status": st.sampled_from(["ok", "warning", "breached", "inconclusive"]),
        }
    )


results_docs = st.fixed_dictionaries(
    {
        "experiment": st.just("fraud-v7"),
        "status": st.just("running"),
        "version": st.just(1),
        "days_elapsed": numbers,
        "units": st.one_of(
            st.just({}),
            st.fixed_dictionaries({"baseline": numbers, "candidate": numbers}),
        ),
        "planned_units_per_variant": numbers,
        "plan": st.fixed_dictionaries({"days": numbers}),
        "srm": st.fixed_dictionaries(
            {
                "p_value": fractions,
                "chi_square_p": fractions,
                "ok": st.booleans(),
                "counts": st.one_of(
                    st.just({}), st.fixed_dictionaries({"baseline": numbers, "candidate": numbers})
                ),
                "segments": st.just([]),
            }
        ),
        "metrics": st.lists(_metric_row(), max_size=3),
        "guardrails": st.lists(_guardrail_row(), max_size=3),
        "decision": st.just({"action": "continue", "reasons": ["precision is not yet better"]}),
        "sequential": st.lists(
            st.fixed_dictionaries(
                {
                    "design": st.sampled_from(["group_sequential", "always_valid"]),
                    "variant": st.just("candidate"),
                    "looks": st.just([]),
                    "planned_looks": st.integers(1, 20),
                    "next_look_units": numbers,
                    "planned_units_per_variant": numbers,
                }
            ),
            max_size=1,
        ),
    }
)


def _text(renderable: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def _readable(text: str) -> None:
    found = UNREADABLE.search(text)
    assert found is None, f"{found.group(0)!r} in: …{text[max(found.start() - 80, 0) :][:200]}"


@settings(max_examples=150, deadline=None)
@given(results_docs)
def test_no_report_prints_nan_inf_none_or_a_long_float(results: dict[str, Any]) -> None:
    _readable(markdown_report(results))
    _readable(_text(render_report(results)))


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "experiment": st.just("fraud-v7"),
            "metric": st.just("precision"),
            "kind": st.just("ratio"),
            "baseline_mean": numbers,
            "units_per_variant": numbers,
            "total_units": numbers,
            "daily_units": st.one_of(st.none(), st.floats(1, 1e7)),
            "days": numbers,
            "min_days": numbers,
            "mde": fractions,
            "alpha": fractions,
            "power": fractions,
            "design": st.sampled_from(["group_sequential", "always_valid", "fixed"]),
            "looks": st.integers(1, 20),
            "inflation": numbers,
            "fixed_units_per_variant": numbers,
            "mde_curve": st.lists(
                st.fixed_dictionaries(
                    {"days": numbers, "mde": fractions, "units_per_variant": numbers}
                ),
                max_size=4,
            ),
        }
    )
)
def test_no_plan_prints_nan_inf_none_or_a_long_float(plan: dict[str, Any]) -> None:
    _readable("\n".join(plan_sentences(plan)))
    _readable(_text(render_plan(plan)))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(fractions, fractions, fractions), min_size=1, max_size=5),
    st.lists(st.tuples(st.floats(0.5, 60), fractions), min_size=1, max_size=5),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=3),
)
def test_no_plot_prints_nan_inf_none_or_a_long_float(
    forest: list[tuple[Any, Any, Any]], curve: list[tuple[float, Any]], units: list[int]
) -> None:
    rows = [
        ForestRow(
            variant="candidate",
            segment="all",
            estimate=e if e is None or e == e else None,
            lower=lo if lo is None or lo == lo else None,
            upper=hi if hi is None or hi == hi else None,
            status="ok",
            breached=False,
        )
        for e, lo, hi in forest
    ]
    labels = re.sub(
        r"<[^>]+>", " ", forest_plot(rows, metric="m", margin=0.02, direction="increase")
    )
    _readable(labels)
    points = [MdePoint(days=d, mde=m if m is None or m == m else None) for d, m in curve]
    _readable(re.sub(r"<[^>]+>", " ", mde_curve(points, planned_days=14.0, target=0.05)))
    timeline = [TimePoint(hour=3600 * (i + 1), units={"a": n}) for i, n in enumerate(units)]
    _readable(re.sub(r"<[^>]+>", " ", units_plot(timeline, ["a"])))


@given(st.floats(-0.5, 0.5), st.floats(0.0001, 1.0))
def test_tick_labels_are_distinct_and_evenly_written(lo: float, width: float) -> None:
    ticks = nice_ticks(lo, lo + width, 5)
    for percent in (True, False):
        label = tick_format(ticks, percent=percent)
        shown = [label(t) for t in ticks]
        assert len(set(shown)) == len(shown), shown
        assert not any(re.fullmatch(r"[+-]0(\.0+)?%?", s) for s in shown), shown


def test_the_missing_mark_is_one_and_no_data_says_so() -> None:
    for value in (None, float("nan"), float("inf"), "x", True):
        assert fmt.pct(value) == fmt.count(value) == fmt.number(value) == fmt.MISSING
        assert fmt.p_value(value) == fmt.MISSING
    assert fmt.lift({"estimate": None, "ci": [None, None]}, percent=True) == "no data yet"
    assert fmt.srm({"p_value": None, "ok": True, "counts": {}}) == (
        "no data yet",
        "not yet testable",
    )


def test_p_values_are_never_one_or_zero() -> None:
    assert fmt.p_value(1.0) == "> 0.99"
    assert fmt.p_value(0.3433) == "0.34"
    assert fmt.p_value(0.0) == "< 0.0001"
    srm = {"p_value": 1.0, "chi_square_p": 0.3434, "ok": True, "counts": {"a": 10067, "b": 9933}}
    assert fmt.srm(srm) == ("p = 0.34", "no mismatch")


def test_plurals_and_days() -> None:
    assert fmt.days(1) == "1 day" and fmt.days(14) == "14 days"
    assert fmt.plural(1, "slice") == "1 slice" and fmt.plural(3, "slice") == "3 slices"
    assert fmt.plural(1200, "user") == "1,200 users"


def test_readable_rounds_floats_in_details() -> None:
    text = fmt.readable({"traffic": 0.30000000000000004, "share": 1 / 3, "why": None})
    assert text == "traffic=0.3, share=0.3333, why=—"


def test_demo_summary_labels_each_interval_and_tests_srm_honestly() -> None:
    interval = {"estimate": 0.0084, "ci": [0.0034, 0.0135]}
    results = {
        "experiment": "fraud-v7-win-s7",
        "status": "shipped",
        "units": {"baseline": 10067, "candidate": 9933},
        "metrics": [
            {
                "metric": "latency_ms",
                "role": "guardrail",
                "segment": None,
                "relative": interval,
                "status": "worse",
            },
        ],
        "guardrails": [
            {
                "metric": "latency_ms",
                "segment": None,
                "alpha": 0.0025,
                "status": "warning",
                "relative": {"estimate": 0.0084, "ci": [0.0012, 0.0156]},
            },
        ],
        "srm": {"p_value": 1.0, "chi_square_p": 0.343, "ok": True, "counts": {"a": 1, "b": 1}},
        "decision": {"action": "ship", "reasons": ["why"]},
    }
    text = _text(summary(results))
    assert "metric CI [+0.3%, +1.4%]" in text
    assert "guardrail 99.5% CI [+0.1%, +1.6%]" in text
    assert "p = 0.34" in text and "p = 1 " not in text
