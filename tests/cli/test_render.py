"""The report renderers are pure and robust: any results document in, text out."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from service.cli.plan import plan_sentences
from service.cli.report import markdown_report, render_report


def _doc() -> dict[str, Any]:
    return {
        "experiment": "fraud-v7",
        "status": "running",
        "version": 2,
        "days_elapsed": 3.25,
        "units": {"baseline": 10234, "candidate": 10110},
        "planned_units_per_variant": 40000,
        "plan": {"days": 14},
        "srm": {"p_value": 0.41, "ok": True, "threshold": 0.001, "segments": []},
        "metrics": [
            {
                "metric": "precision",
                "role": "primary",
                "variant": "candidate",
                "segment": None,
                "baseline": {"units": 10234, "mean": 0.62},
                "treatment": {"units": 10110, "mean": 0.65},
                "absolute": {"estimate": 0.03, "ci": [0.01, 0.05]},
                "relative": {"estimate": 0.048, "ci": [0.016, 0.081]},
                "p_value": 0.003,
                "status": "better",
            }
        ],
        "guardrails": [
            {
                "metric": "recall",
                "variant": "candidate",
                "segment": {"device": "mobile"},
                "margin": 0.02,
                "relative": {"estimate": -0.04, "ci": [-0.07, -0.01]},
                "p_value": 0.0004,
                "status": "breached",
            }
        ],
        "decision": {"action": "rollback", "variant": "candidate", "reasons": ["recall breached"]},
        "sequential": [{"design": "group_sequential", "planned_looks": 14, "looks": [{}, {}]}],
    }


def _ansi(doc: dict[str, Any]) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system="standard")
    console.print(render_report(doc))
    return out.getvalue()


def test_terminal_report_shows_every_part_and_breaches_in_red() -> None:
    out = _ansi(_doc())
    plain = Console(file=io.StringIO(), width=200)
    with plain.capture() as capture:
        plain.print(render_report(_doc()))
    text = capture.get()
    assert "fraud-v7 · running · version 2" in text
    assert "+4.8% [+1.6%, +8.1%]" in text and "+0.03 [+0.01, +0.05]" in text
    assert "0.003" in text and "better" in text
    assert "device=mobile" in text and "-4.0% CI [-7.0%, -1.0%]" in text
    assert "ROLLBACK" in text and "recall breached" in text
    assert "10,110 of 40,000 units per variant (25%)" in text
    assert "day 3.2 of 14" in text and "look 2 of 14" in text
    assert "traffic split as configured (p = 0.41)" in text
    # ANSI red (31) on the breached status and the rollback decision.
    assert "\x1b[1;31mbreached" in out
    assert "\x1b[1;31mROLLBACK" in out


def test_markdown_report_is_a_table_with_the_same_numbers() -> None:
    md = markdown_report(_doc())
    assert md.startswith("## fraud-v7 · running · version 2")
    assert "**Decision: rollback (candidate)**" in md
    assert (
        "| precision | primary | candidate | all | 0.62 | 0.65 | +0.03 [+0.01, +0.05] "
        "| +4.8% [+1.6%, +8.1%] | 0.003 | **better** |"
    ) in md
    assert "| recall | candidate | device=mobile | 2.0% | -4.0% CI [-7.0%, -1.0%] | 0.0004 |" in md
    assert "**breached**" in md


def test_renderers_survive_empty_and_odd_documents() -> None:
    odd: dict[str, Any] = {
        "metrics": [{"metric": "m|x", "relative": {"estimate": None, "ci": [None, None]}}],
        "guardrails": "not a list",
        "units": {"a": None},
        "srm": {"ok": False, "p_value": 1e-9},
    }
    for doc in ({}, odd):
        md = markdown_report(doc)
        assert "### Metrics" in md
        Console(file=io.StringIO()).print(render_report(doc))
    assert "m\\|x" in markdown_report(odd)
    assert "sample ratio mismatch (p < 0.0001)" in markdown_report(odd)


def test_plan_sentences() -> None:
    plan = {
        "experiment": "x",
        "metric": "precision",
        "kind": "ratio",
        "design": "group_sequential",
        "looks": 14,
        "alpha": 0.05,
        "power": 0.8,
        "mde": 0.05,
        "baseline_mean": 0.62,
        "variants": 2,
        "daily_units": 20000.0,
        "min_days": 14,
        "units_per_variant": 41300,
        "total_units": 82600,
        "days": 14,
        "fixed_units_per_variant": 39500,
        "inflation": 1.045,
        "error": None,
    }
    first = plan_sentences(plan, "user")[0]
    assert first == (
        "needs 41,300 users per variant (82,600 in total): 5 days at 20,000/day; "
        "14 days minimum → 14 days"
    )
    assert plan_sentences({**plan, "daily_units": None, "days": None})[0].endswith(
        "set analysis.expected_daily_units to know how many days"
    )
    assert plan_sentences({"error": "metrics.0.baseline_mean is needed"}) == [
        "cannot plan: metrics.0.baseline_mean is needed"
    ]


def test_a_verdict_past_the_plan_is_labelled() -> None:
    doc = _doc()
    doc["metrics"][0]["latest"] = {
        "relative": {"estimate": 0.07, "ci": [-0.01, 0.15]},
        "past_plan": True,
        "interval": "always_valid",
    }
    doc["sequential"] = [
        {
            "design": "fixed",
            "variant": "candidate",
            "planned_looks": 1,
            "looks": [{}],
            "horizon_reached_at": 1,
            "decided_at": 1,
        }
    ]
    md = markdown_report(doc)
    assert "look 1 of 1; plan reached at look 1, verdict final" in md
    assert "past the plan: precision +7.0% [-1.0%, +15.0%] now" in md
    assert "not tested, the verdict stands" in md
    doc["metrics"][0]["relative"] = {"estimate": 2.15, "ci": [1.2, None]}
    assert "+215.0% [+120.0%, +∞)" in markdown_report(doc)
