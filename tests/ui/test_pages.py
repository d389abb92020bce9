"""The dashboard's pages on real data (events counted by the real aggregator).

Every plotted number is read back out of the SVG and compared with the JSON API.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi.testclient import TestClient
from markupsafe import escape

from service.ui._experiment_view import segment_label
from tests._factories import simple_spec
from tests.conftest import ADMIN, CLIENT, results_with_units
from tests.ui.helpers import Element, csrf_token, elements, login, plotted
from tests.ui.scenario import KEY, UNITS, scenario_events, scenario_spec


def seed(api: TestClient, key: str = KEY, seed_: int = 3, **changes: Any) -> dict[str, Any]:
    spec = {**scenario_spec(key), **changes}
    assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    assert api.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200
    events = scenario_events(key, seed=seed_)
    for i in range(0, len(events), 500):
        res = api.post("/v1/events", json={"events": events[i : i + 500]}, headers=CLIENT)
        assert res.status_code == 202, res.text
    return results_with_units(api, key, UNITS, timeout_s=60)


def _forest(el: Element) -> tuple[str, str, float | None, float | None, float | None]:
    return (
        el.attrs["data-variant"],
        el.attrs["data-segment"],
        el.num("estimate"),
        el.num("lower"),
        el.num("upper"),
    )


def _expected_forest(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (
            r["variant"],
            segment_label(r["segment"]),
            r["relative"]["estimate"],
            r["relative"]["ci"][0],
            r["relative"]["ci"][1],
        )
        for r in rows
    }


def test_experiment_page_plots_the_results_api_numbers(worker_api: TestClient) -> None:
    seed(worker_api)
    login(worker_api)
    page = worker_api.get(f"/ui/experiments/{KEY}")
    assert page.status_code == 200
    results = worker_api.get(f"/v1/experiments/{KEY}/results", headers=ADMIN).json()
    plan = worker_api.get(f"/v1/experiments/{KEY}/plan", headers=ADMIN).json()
    html = page.text

    # Forest plots: a guardrail plots its guardrail rows, the others their metric rows.
    for metric in ("ctr", "latency_ms"):
        rows = plotted(html, "forest", "forest-row", metric=metric)
        source = results["guardrails"] if metric == "latency_ms" else results["metrics"]
        expected = _expected_forest([r for r in source if r["metric"] == metric])
        assert {_forest(r) for r in rows} == expected
        assert len(rows) == 3  # all, desktop, mobile

    guard = {
        r.attrs["data-segment"]: r
        for r in plotted(html, "forest", "forest-row", metric="latency_ms")
    }
    assert guard["device=mobile"].attrs["data-breached"] == "true"
    assert "breached" in guard["device=mobile"].classes
    assert guard["device=desktop"].attrs["data-breached"] == "false"
    margin = plotted(html, "forest", "margin", metric="latency_ms")
    assert [m.num("margin") for m in margin] == [0.05]  # latency should fall: +5% is harm

    # The sequential picture: z at each look against the boundary.
    looks = plotted(html, "sequential", "look")
    api_looks = results["sequential"][0]["looks"]
    assert len(api_looks) >= 2
    assert [
        (el.num("look"), el.num("units"), el.num("information"), el.num("z"), el.num("boundary"))
        for el in looks
    ] == [(lk["look"], lk["units"], lk["information"], lk["z"], lk["boundary"]) for lk in api_looks]

    # Units over time with the SRM p-value.
    points = {
        (el.num("hour"), el.attrs["data-variant"]): el.num("units")
        for el in plotted(html, "units", "units")
    }
    expected_points = {
        (float(t["hour"]), v): float(n) for t in results["timeline"] for v, n in t["units"].items()
    }
    assert points == expected_points and len(results["timeline"]) >= 5
    srm = [(el.num("hour"), el.num("srm-p-value")) for el in plotted(html, "units", "srm")]
    assert srm == [(t["hour"], t["srm_p_value"]) for t in results["timeline"]]

    # The plan's MDE curve (the results carry the plan at the same observed traffic).
    curve = [(el.num("days"), el.num("mde")) for el in plotted(html, "mde", "mde-point")]
    assert curve == [(p["days"], p["mde"]) for p in results["plan"]["mde_curve"]]
    assert curve == [(p["days"], p["mde"]) for p in plan["mde_curve"]]  # expected traffic yet

    # The decision with its reasons, the spec as written, the audit log.
    assert results["decision"]["action"] == "rollback"
    assert 'data-decision="rollback"' in html
    for reason in results["decision"]["reasons"]:
        assert _escaped(reason) in html
    assert _escaped(scenario_spec()["hypothesis"]) in html
    assert 'must not rise by more than <strong class="margin">5.0%</strong>' in html
    assert 'data-action="start"' in html
    # Running: the results region polls its fragment, which holds the same plots.
    assert f'data-refresh-url="/ui/experiments/{KEY}/live"' in html
    fragment = worker_api.get(f"/ui/experiments/{KEY}/live").text
    assert "<html" not in fragment
    assert fragment.lstrip().startswith('<div id="live" data-status="running">')
    rows = plotted(fragment, "forest", "forest-row", metric="ctr")
    assert {_forest(r) for r in rows} == _expected_forest(
        [r for r in results["metrics"] if r["metric"] == "ctr"]
    )


def _escaped(text: str) -> str:
    return str(escape(text))


def test_a_verdict_past_the_plan_is_labelled_final(worker_api: TestClient) -> None:
    # A fixed design whose plan (~150 units per variant) is reached in the first hours:
    # the page says which look decided and shows the later totals as untested.
    spec = scenario_spec()
    spec["metrics"][0]["mde"] = 0.5
    spec["analysis"] = {**spec["analysis"], "design": "fixed"}
    results = seed(worker_api, **{"metrics": spec["metrics"], "analysis": spec["analysis"]})
    picture = results["sequential"][0]
    assert picture["horizon_reached_at"] == 1 and picture["decided_at"] == 1
    primary = next(r for r in results["metrics"] if r["role"] == "primary")
    assert primary["latest"]["past_plan"] is True
    login(worker_api)
    html = worker_api.get(f"/ui/experiments/{KEY}").text
    assert "The plan was reached at look 1: the verdict is final." in html
    assert "Past the plan (shown, not tested)" in html


def test_list_shows_progress_decision_and_alert_badges(worker_api: TestClient) -> None:
    seed(worker_api)
    draft = simple_spec("exp-draft", layer="ranking")
    assert worker_api.post("/v1/experiments", json=draft, headers=ADMIN).status_code == 201
    login(worker_api)
    page = worker_api.get("/ui/").text
    plan = worker_api.get(f"/v1/experiments/{KEY}/plan", headers=ADMIN).json()
    rows = {
        el.attrs["data-experiment"]: el
        for el in elements(page)
        if el.tag == "tr" and "data-experiment" in el.attrs
    }
    assert set(rows) == {KEY, "exp-draft"}
    row_html = page.split(f'data-experiment="{KEY}"')[1].split("</tr>")[0]
    assert f"{UNITS:,}" in row_html and f"{plan['total_units']:,}" in row_html
    assert "decision-rollback" in row_html
    assert 'data-badge="breach"' in row_html
    assert 'data-badge="srm"' not in row_html
    draft_html = page.split('data-experiment="exp-draft"')[1].split("</tr>")[0]
    assert "data-badge" not in draft_html and "status-draft" in draft_html

    only_drafts = worker_api.get("/ui/?status=draft").text
    assert (
        'data-experiment="exp-draft"' in only_drafts
        and f'data-experiment="{KEY}"' not in only_drafts
    )
    by_layer = worker_api.get("/ui/?layer=ranking").text
    assert 'data-experiment="exp-draft"' in by_layer and f'data-experiment="{KEY}"' not in by_layer
    bad = worker_api.get("/ui/?status=exploded")
    assert bad.status_code == 422 and "status" in bad.text


def test_rollback_confirmation_names_the_reasons(worker_api: TestClient) -> None:
    results = seed(worker_api)
    token = login(worker_api)
    confirm = worker_api.get(f"/ui/experiments/{KEY}/confirm/rollback")
    assert confirm.status_code == 200
    reasons = confirm.text.split('id="confirm-reasons"')[1].split("</ul>")[0]
    for reason in results["decision"]["reasons"]:
        assert _escaped(reason) in reasons
    assert "latency_ms" in confirm.text.split("Breached guardrails")[1]
    assert csrf_token(confirm.text) == token
    done = worker_api.post(
        f"/ui/experiments/{KEY}/rollback", data={"csrf_token": token}, follow_redirects=True
    )
    assert done.status_code == 200
    assert "Experiment rolled back" in done.text and "status-rolled_back" in done.text
    record = worker_api.get(f"/v1/experiments/{KEY}", headers=ADMIN).json()
    assert record["status"] == "rolled_back"
    detail = record["audit"][-1]["detail"]
    assert detail["decision"] == "rollback"
    assert detail["decision_reasons"] == results["decision"]["reasons"]
    # Ended: no more polling, and no action buttons.
    assert "data-refresh-url" not in done.text and 'id="action-' not in done.text
    again = worker_api.get(f"/ui/experiments/{KEY}/confirm/rollback")
    assert again.status_code == 409
    # The journal has it, with the decision.
    journal = worker_api.get("/ui/journal").text
    assert f'data-experiment="{KEY}" data-status="rolled_back"' in journal


def test_journal_chart_compounds_the_shipped_lifts(worker_api: TestClient) -> None:
    token = login(worker_api)
    for i, key in enumerate(("ranker-v2", "ranker-v3")):
        seed(worker_api, key, seed_=10 + i, layer="ranking")
        res = worker_api.post(
            f"/ui/experiments/{key}/ship", data={"csrf_token": token, "variant": "treatment"}
        )
        assert res.status_code == 200
    api_journal = worker_api.get("/v1/journal", headers=ADMIN).json()
    page = worker_api.get("/ui/journal").text
    order = [
        el.attrs["data-experiment"]
        for el in elements(page)
        if el.tag == "tr" and "data-experiment" in el.attrs
    ]
    assert order == ["ranker-v3", "ranker-v2"]  # newest first
    steps = plotted(page, "improvement", "step")
    assert [s.attrs["data-experiment"] for s in steps] == ["ranker-v2", "ranker-v3"]
    lifts = {e["experiment"]: e["primary"]["relative"]["estimate"] for e in api_journal["entries"]}
    assert [s.num("lift") for s in steps] == [lifts["ranker-v2"], lifts["ranker-v3"]]
    line = next(ln for ln in api_journal["lines"] if ln["line"] == "ranking")
    cumulative = line["cumulative"][0]["lift"]["estimate"]
    last = steps[-1].num("cumulative")
    assert last is not None and math.isclose(last, cumulative, rel_tol=1e-12)


def test_plan_page_matches_the_plan_api(api: TestClient) -> None:
    login(api)
    query = {
        "kind": "proportion",
        "baseline_mean": "0.3",
        "mde": "0.1",
        "expected_daily_units": "4000",
        "variants": "2",
        "alpha": "0.05",
        "power": "0.8",
        "design": "group_sequential",
        "looks": "5",
        "min_days": "7",
    }
    page = api.get("/ui/plan", params=query)
    assert page.status_code == 200
    spec = simple_spec(
        "plan",
        metrics=[
            {
                "name": "primary",
                "kind": "proportion",
                "value": "value",
                "role": "primary",
                "mde": 0.1,
                "baseline_mean": 0.3,
            }
        ],
        analysis={"looks": 5, "min_days": 7, "expected_daily_units": 4000},
    )
    expected = api.post("/v1/plan", json=spec, headers=ADMIN).json()
    html = page.text
    assert f'id="plan-total">{expected["total_units"]:,}<' in html
    assert f'id="plan-per-variant">{expected["units_per_variant"]:,}<' in html
    curve = [(el.num("days"), el.num("mde")) for el in plotted(html, "mde", "mde-point")]
    assert curve == [(p["days"], p["mde"]) for p in expected["mde_curve"]]
    assert len(curve) >= 5

    bad = api.get("/ui/plan", params={**query, "baseline_mean": "1.5"})
    assert bad.status_code == 422
    assert 'id="p-baseline_mean-error"' in bad.text
    mean_without_sd = api.get("/ui/plan", params={**query, "kind": "mean", "baseline_mean": "10"})
    assert mean_without_sd.status_code == 422 and 'id="p-baseline_sd-error"' in mean_without_sd.text


def test_analysis_page_plots_the_analysis_api_numbers(api: TestClient) -> None:
    records = []
    for i in range(600):
        country = ("US", "CA", "MX")[i % 3]
        confidence = 0.55 + (i % 9) * 0.05
        wrong = (country == "MX" and i % 2 == 0) or i % 11 == 0
        records.append(
            {
                "record_id": f"r{i}",
                "prediction": "fraud" if i % 4 else "ok",
                "label": ("ok" if i % 4 else "fraud") if wrong else ("fraud" if i % 4 else "ok"),
                "confidence": confidence,
                "attributes": {"country": country, "device": "mobile" if i % 2 else "desktop"},
            }
        )
    res = api.post("/v1/models/fraud/records", json={"records": records}, headers=CLIENT)
    assert res.status_code == 202, res.text
    report = api.get("/v1/models/fraud/analysis", headers=ADMIN).json()
    login(api)
    listing = api.get("/ui/models").text
    assert 'href="/ui/models/fraud/analysis"' in listing
    # The list, `sharpen models` and the analysis count the same labelled records.
    labelled = re.search(r'<td class="labelled">([\d,]+)', listing)
    assert labelled and labelled.group(1) == f"{report['overall']['labelled']:,}" == "600"
    page = api.get("/ui/models/fraud/analysis")
    assert page.status_code == 200
    html = page.text
    bins = plotted(html, "reliability", "bin")
    assert [
        (b.num("lower"), b.num("upper"), b.num("records"), b.num("confidence"), b.num("accuracy"))
        for b in bins
    ] == [
        (b["lower"], b["upper"], b["records"], b["mean_predicted"], b["observed"]["value"])
        for b in report["calibration"]["bins"]
    ]
    regions = plotted(html, "pareto", "region")
    assert [
        (r.num("errors"), r.num("cumulative-record-share"), r.num("cumulative-error-share"))
        for r in regions
    ] == [
        (p["errors"], p["cumulative_record_share"], p["cumulative_error_share"])
        for p in report["pareto"]
    ]
    assert len(regions) >= 2  # MX is a slice of its own
    ranked = [el.attrs["data-lever"] for el in elements(html) if "data-lever" in el.attrs]
    assert ranked == [lv["lever"] for lv in sorted(report["levers"], key=lambda lv: lv["rank"])]
    for lever in report["levers"]:
        for record_id in lever["examples"]:
            assert f"<code>{record_id}</code>" in html
    assert any(lv["examples"] for lv in report["levers"])
    assert 'id="cover"' in html and "Worst single segments" in html
    assert "No reference yet" in html or "no reference yet" in html
    assert api.get("/ui/models/nope/analysis").status_code == 404
