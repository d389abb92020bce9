"""The report's decisions on planted truth (``scripts/model_line.py``): a degraded region
is found and only it; an A/A line raises nothing over 20 passes; a drifted feature is
named; small samples are not decided; every number is fit to read."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from scripts.model_line import Line, Sums, arrays, records
from service.modelwatch._apply import _cells
from service.modelwatch._contrib import Scoring, add_into, input_stats, label_stats
from service.modelwatch._report import Facts, ReportConfig, build_report, rounded
from service.modelwatch._windows import Bucket, Windows

END = 1_717_200_000.0 + 7 * 3600.0
CONFIG = ReportConfig(reference_days=7)
FACTS = Facts(labels_seen=("0", "1"))


def _flagged(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (s["segment"], s["metric"], s["status"])
        for s in report["statuses"]
        if s["status"] in ("warning", "degraded")
    ]


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


def test_a_degraded_region_is_found_and_only_it() -> None:
    line = Line(segments=10, per_day=600, days=16, seed=21, degrade_segment=4,
                degrade_since=END - 86_400, drop=0.35)  # fmt: skip
    sums = Sums(arrays(line, END), 10, CONFIG.reference_days)
    report = build_report("fraud", sums.windows(END), FACTS, CONFIG, now=END)
    flagged = _flagged(report)
    assert ("region=r4", "accuracy", "degraded") in flagged
    assert {seg for seg, _, _ in flagged} <= {"region=r4", "all"}
    assert ("all", "accuracy", "degraded") not in flagged  # 1 in 10 regions: within margin
    evidence = next(
        c for c in report["cells"]
        if (c["segment"], c["metric"], c["window"]) == ("region=r4", "accuracy", "day")
    )  # fmt: skip
    assert evidence["status"] == "degraded"
    assert evidence["relative"]["ci"][1] < -CONFIG.margin
    assert evidence["value"] == pytest.approx(evidence["reference"] * 0.65, rel=0.15)
    assert report["status"] == "degraded"
    assert report["family_size"] == 11 * 4 * 2
    assert report["alpha_each"]["day"] < report["alpha_each"]["week"]


def test_an_unchanged_line_raises_nothing_over_twenty_passes() -> None:
    line = Line(segments=10, per_day=600, days=16, seed=22)
    sums = Sums(arrays(line, END), 10, CONFIG.reference_days)
    for k in range(20):
        at = END - (19 - k) * 3600.0
        report = build_report("fraud", sums.windows(at), FACTS, CONFIG, now=at)
        assert _flagged(report) == [], k
        assert report["status"] == "ok"


def _per_record_windows(line: Line, at: float, features: tuple[str, ...]) -> Windows:
    """Windows built record by record with the production sums (inputs included)."""
    hours: dict[int, dict[str, float]] = {}
    days: dict[int, dict[str, float]] = {}
    frozen = {"region": [f"r{i}" for i in range(line.segments)]}
    for kwargs, label, label_at in records(line, at):
        record = {**kwargs}
        sums = {"n": 1.0, **label_stats(record, label if label_at <= at else None, Scoring())}
        fields: dict[str, float] = {}
        for cell in _cells({"region": record["attributes"]["region"]}, frozen):
            add_into(fields, {f"{k}\x1f{cell}": v for k, v in sums.items()})
        add_into(fields, input_stats(record, features, ()))
        add_into(hours.setdefault(int(record["timestamp"] // 3600), {}), fields)
        add_into(days.setdefault(int(record["timestamp"] // 86_400), {}), fields)

    def parse(flat: dict[str, float]) -> Bucket:
        from service.modelwatch._windows import parse_bucket

        return parse_bucket({k: repr(v) for k, v in flat.items()})

    return Windows.of(
        {h: parse(b) for h, b in hours.items()}, {d: parse(b) for d, b in days.items()},
        at, CONFIG.reference_days,
    )  # fmt: skip


def test_a_drifted_feature_is_named_and_the_others_are_not() -> None:
    line = Line(segments=3, per_day=150, days=15, seed=23, drift_feature="amount",
                drift_since=END - 86_400, factor=3.0)  # fmt: skip
    windows = _per_record_windows(line, END, ("amount", "age", "channel"))
    report = build_report("fraud", windows, FACTS, CONFIG, now=END)
    drift = {d["feature"]: d for d in report["drift"]}
    assert drift["amount"]["status"] == "drift"
    assert drift["amount"]["psi"] > 0.2
    assert {f for f, d in drift.items() if d["status"] == "drift"} == {"amount"}
    assert set(drift) == {"amount", "age", "channel", "attribute:region"}
    shares = drift["amount"]["bins"]
    assert sum(b["share"] for b in shares) == pytest.approx(1.0, abs=1e-3)
    assert all(" to " in b["bin"] or b["bin"] == "missing" for b in shares)
    assert _flagged(report) == []  # inputs moved, the model's accuracy did not


def test_uploaded_reference_set_is_the_drift_reference() -> None:
    line = Line(segments=2, per_day=200, days=15, seed=24)
    windows = _per_record_windows(line, END, ("age",))
    # A reference set whose ages sit 15 years higher: today's ages drift against it.
    import numpy as np

    from service.modelwatch._contrib import bin_counts

    ages = np.random.default_rng(0).normal(55.0, 10.0, 3000)
    facts = Facts(labels_seen=("0", "1"), reference_set={"age": (bin_counts(ages), 3000.0, False)})
    drift = {d["feature"]: d for d in build_report("m", windows, facts, CONFIG, now=END)["drift"]}
    assert drift["age"]["status"] == "drift"
    assert drift["age"]["reference_records"] == 3000


def test_small_segments_are_not_decided_and_say_why() -> None:
    line = Line(segments=3, per_day=20, days=16, seed=25, degrade_segment=0,
                degrade_since=END - 86_400, drop=0.9)  # fmt: skip
    sums = Sums(arrays(line, END), 3, CONFIG.reference_days)
    report = build_report("fraud", sums.windows(END), FACTS, CONFIG, now=END)
    day = [c for c in report["cells"] if c["window"] == "day" and c["metric"] != "ece"]
    assert day and all(c["status"] == "insufficient" for c in day)
    assert all("fewer than 200 labelled" in c["reason"] for c in day)
    assert report["status"] in ("ok", "insufficient")


def test_a_young_model_reports_without_deciding() -> None:
    line = Line(segments=2, per_day=500, days=3, seed=26)
    sums = Sums(arrays(line, END), 2, CONFIG.reference_days)
    report = build_report("fraud", sums.windows(END), FACTS, CONFIG, now=END)
    assert report["status"] == "insufficient"
    assert any("reference period" in note for note in report["notes"])
    assert report["volume"]["reference"] == {"records": 0, "labelled": 0, "completeness": None}


def test_every_number_is_finite_and_short() -> None:
    line = Line(segments=4, per_day=300, days=16, seed=27, label_delay_h=30)
    windows = _per_record_windows(line, END, ("amount", "age", "channel"))
    report = build_report("fraud", windows, FACTS, CONFIG, now=END)
    text = orjson.dumps(report).decode()  # orjson refuses NaN and infinities as null
    assert "NaN" not in text and "Infinity" not in text
    for x in _numbers(report):
        assert math.isfinite(x)
        assert len(repr(x).replace("-", "").replace(".", "").lstrip("0")) <= 14, x
    completeness = report["volume"]["day"]["completeness"]
    assert 0 < completeness < 1  # labels 30 h late on average: the day is partly labelled


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0.123456789, 0.123457), (123456.789, 123457.0), (1e-9, 1e-9), (float("nan"), None), (0, 0.0)],
)
def test_rounded(x: float, expected: float | None) -> None:
    assert rounded(x) == expected
