"""Breakdowns equal the same computation in pandas; intervals match statsmodels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from statsmodels.stats.proportion import proportion_confint

from service.analysis import analyze, build_frame
from service.analysis._intervals import mean_t, wilson
from tests.analysis._sim import records


@pytest.fixture(scope="module")
def data() -> tuple[list[dict[str, Any]], pd.DataFrame, dict[str, Any]]:
    recs = records(3000, seed=7, planted={"country": "BR"})
    # Some unlabelled records and a missing prediction, to exercise the definitions.
    for r in recs[::50]:
        del r["label"]
    recs[3]["prediction"] = None
    rows = []
    for r in recs:
        rows.append(
            {
                **r["attributes"],
                "labelled": "label" in r,
                "error": "label" in r and r["prediction"] != r["label"],
                "pred_pos": r["prediction"] == 1,
                "label_pos": r.get("label") == 1,
                "ts": pd.Timestamp(r["timestamp"], unit="s", tz="UTC"),
            }
        )
    return recs, pd.DataFrame(rows), analyze(recs)


def test_wilson_matches_statsmodels() -> None:
    for k, n in [(0, 10), (3, 10), (10, 10), (47, 1000), (1, 1)]:
        _, lo, hi = wilson(k, n, 0.95)
        ref = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert float(lo) == pytest.approx(ref[0], abs=1e-12)
        assert float(hi) == pytest.approx(ref[1], abs=1e-12)
    p, lo, hi = wilson(0, 0)
    assert np.isnan(p) and np.isnan(lo) and np.isnan(hi)


def test_mean_interval_matches_scipy() -> None:
    from scipy import stats

    x = np.random.default_rng(1).normal(2.0, 3.0, 40)
    mean, lo, hi = mean_t(x.size, x.sum(), (x**2).sum())
    ref = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert float(mean) == pytest.approx(x.mean())
    assert (float(lo), float(hi)) == pytest.approx(ref)


def _expected(df: pd.DataFrame) -> dict[str, Any]:
    lab = df[df.labelled]
    tp = int((lab.pred_pos & lab.label_pos).sum())
    return {
        "records": len(df),
        "labelled": len(lab),
        "errors": int(lab.error.sum()),
        "error_rate": lab.error.mean(),
        "precision": tp / int(lab.pred_pos.sum()),
        "recall": tp / int(lab.label_pos.sum()),
    }


def _check(row: dict[str, Any], exp: dict[str, Any]) -> None:
    assert row["records"] == exp["records"]
    assert row["labelled"] == exp["labelled"]
    assert row["errors"] == exp["errors"]
    assert row["error_rate"]["value"] == pytest.approx(exp["error_rate"])
    assert row["accuracy"]["value"] == pytest.approx(1 - exp["error_rate"])
    assert row["precision"]["value"] == pytest.approx(exp["precision"])
    assert row["recall"]["value"] == pytest.approx(exp["recall"])
    assert row["mean_loss"]["value"] == pytest.approx(exp["error_rate"])  # 0-1 loss
    lo, hi = proportion_confint(exp["errors"], exp["labelled"], method="wilson")
    assert row["error_rate"]["ci"] == pytest.approx([lo, hi])


def test_overall(data: Any) -> None:
    _, df, report = data
    _check(report["overall"], _expected(df))
    assert report["overall"]["mode"] == "label"
    assert report["overall"]["unlabelled"] == int((~df.labelled).sum())


def test_single_attribute_segments(data: Any) -> None:
    _, df, report = data
    singles = [s for s in report["segments"] if len(s["attributes"]) == 1]
    assert len(singles) == 5 + 4 + 2
    for seg in singles:
        ((name, value),) = seg["attributes"].items()
        _check(seg, _expected(df[df[name] == value]))


def test_pair_segments(data: Any) -> None:
    _, df, report = data
    pairs = [s for s in report["segments"] if len(s["attributes"]) == 2]
    grouped = df[df.labelled].groupby(["country", "device"]).size()
    expected_cells = int((grouped >= 30).sum())
    country_device = [s for s in pairs if set(s["attributes"]) == {"country", "device"}]
    assert len(country_device) == expected_cells
    for seg in pairs:
        (a, va), (b, vb) = seg["attributes"].items()
        _check(seg, _expected(df[(df[a] == va) & (df[b] == vb)]))
        assert not seg["low_support"]


def test_time_breakdowns(data: Any) -> None:
    _, df, report = data
    hours = {r["value"]: r for r in report["time"] if r["dimension"] == "hour"}
    for hour, group in df.groupby(df.ts.dt.hour):
        _check(hours[hour], _expected(group))
    days = {r["value"]: r for r in report["time"] if r["dimension"] == "weekday"}
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for wd, group in df.groupby(df.ts.dt.day_of_week):
        _check(days[names[wd]], _expected(group))
    dates = {r["value"]: r for r in report["time"] if r["dimension"] == "day"}
    for date, group in df.groupby(df.ts.dt.strftime("%Y-%m-%d")):
        _check(dates[date], _expected(group))


def test_low_support_is_flagged() -> None:
    recs = records(400, seed=3)
    recs.append(
        {
            **recs[0],
            "record_id": "tiny",
            "attributes": {"country": "ZZ"},
            "prediction": 1 - recs[0]["label"],
        }
    )
    report = analyze(recs)
    tiny = next(s for s in report["segments"] if s["attributes"] == {"country": "ZZ"})
    assert tiny["error_rate"]["value"] == 1.0
    assert tiny["low_support"] is True
    assert tiny["error_rate"]["ci"][0] < 0.5  # one error out of one says little


def test_scored_binary_log_loss_and_categories() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.01, 0.99, 2000)
    y = (rng.random(2000) < p).astype(int)
    recs = [
        {
            "record_id": str(i),
            "timestamp": 1.7e9 + i,
            "prediction": float(p[i]),
            "label": bool(y[i]),
            "error_category": "late" if i % 3 == 0 else None,
        }
        for i in range(2000)
    ]
    report = analyze(recs)
    ov = report["overall"]
    assert ov["mode"] == "scored"
    expected_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert ov["mean_loss"]["value"] == pytest.approx(expected_loss)
    assert ov["errors"] == int(np.sum((p >= 0.5) != (y == 1)))
    (late,) = report["categories"]
    assert late["category"] == "late"
    assert late["records"] == len(range(0, 2000, 3))
    frame = build_frame(recs)
    assert np.allclose(frame.confidence, np.maximum(p, 1 - p))


def test_label_normalisation() -> None:
    recs: list[dict[str, Any]] = [
        {"record_id": "a", "prediction": True, "label": 1},
        {"record_id": "b", "prediction": 1.0, "label": "1"},
        {"record_id": "c", "prediction": "cat", "label": "dog"},
        {"record_id": "d", "prediction": None, "label": "dog"},
    ]
    frame = build_frame(recs)
    assert frame.error.tolist() == [False, False, True, True]
    assert frame.served.tolist() == [True, True, True, False]


def test_attributes_are_bounded_by_frequency() -> None:
    recs: list[dict[str, Any]] = []
    for i in range(300):
        attrs = {f"common{k}": str(i % 3) for k in range(20)}
        if i == 0:
            attrs.update({f"rare{k}": "x" for k in range(5)})
        recs.append({"record_id": str(i), "prediction": 1, "label": i % 2, "attributes": attrs})
    frame = build_frame(recs, max_attributes=20, max_values=2)
    assert sorted(frame.attributes) == sorted(f"common{k}" for k in range(20))
    col = frame.attributes["common0"]
    assert col.values == ("0", "1", "(other)")  # the two most frequent values, the rest lumped
    assert int((col.codes == 2).sum()) == 100
