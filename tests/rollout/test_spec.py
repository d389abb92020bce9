"""The spec's ``rollout`` block: validated by field like the rest; one duration parser."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.spec import ExperimentSpec, parse_spec
from service.spec.duration import format_duration, parse_duration
from tests._factories import fraud_spec
from tests.conftest import ADMIN

STEPS: list[dict[str, Any]] = [
    {"traffic": 0.01, "min_duration": "1h", "min_units": 2000},
    {"traffic": 0.05, "min_duration": "6h"},
    {"traffic": 0.2, "min_duration": "1d"},
    {"traffic": 1.0},
]


def _rollout(**changes: Any) -> dict[str, Any]:
    return {"steps": [dict(s) for s in STEPS], "auto_advance": True, **changes}


def _step(i: int, **changes: Any) -> dict[str, Any]:
    rollout = _rollout()
    rollout["steps"][i] = {**rollout["steps"][i], **changes}
    return fraud_spec(rollout=rollout)


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("traffic not increasing", _step(2, traffic=0.05), "rollout.steps.2.traffic"),
    ("traffic falls", _step(1, traffic=0.005), "rollout.steps.1.traffic"),
    ("last step not the spec's traffic", _step(3, traffic=0.5), "rollout.steps.3.traffic"),
    ("last step waits", _step(3, min_duration="1h"), "rollout.steps.3"),
    ("last step wants units", _step(3, min_units=10), "rollout.steps.3"),
    ("traffic zero", _step(0, traffic=0), "rollout.steps.0.traffic"),
    ("traffic above one", _step(0, traffic=1.5), "rollout.steps.0.traffic"),
    ("unparseable duration", _step(0, min_duration="an hour"), "rollout.steps.0.min_duration"),
    ("negative duration", _step(1, min_duration=-5), "rollout.steps.1.min_duration"),
    ("duration too long", _step(1, min_duration="400d"), "rollout.steps.1.min_duration"),
    ("boolean duration", _step(1, min_duration=True), "rollout.steps.1.min_duration"),
    ("huge duration text", _step(1, min_duration="1h" * 100_000), "rollout.steps.1.min_duration"),
    ("negative units", _step(0, min_units=-1), "rollout.steps.0.min_units"),
    ("unknown step field", _step(0, wait="1h"), "rollout.steps.0.wait"),
    ("one step", fraud_spec(rollout={"steps": [{"traffic": 1.0}]}), "rollout.steps"),
    ("no steps", fraud_spec(rollout={"auto_advance": True}), "rollout.steps"),
    (
        "too many steps",
        fraud_spec(rollout={"steps": [{"traffic": (i + 1) / 21} for i in range(21)]}),
        "rollout.steps",
    ),
    (
        "auto_advance not a flag",
        fraud_spec(rollout=_rollout(auto_advance="sometimes")),
        "rollout.auto_advance",
    ),
    (
        "last step vs a lower spec traffic",
        fraud_spec(traffic=0.5, rollout=_rollout()),
        "rollout.steps.3.traffic",
    ),
]


@pytest.mark.parametrize(("spec", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_names_field(api: TestClient, spec: dict[str, Any], field: str) -> None:
    answer = api.post("/v1/experiments", json=spec, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["error"]["details"]]


def test_a_huge_duration_is_refused_without_echoing_it(api: TestClient) -> None:
    answer = api.post("/v1/experiments", json=_step(1, min_duration="1h" * 100_000), headers=ADMIN)
    assert answer.status_code == 422 and len(answer.content) < 2000, answer.content[:300]
    assert "at most 64 characters (got 200000)" in answer.text


def test_every_rollout_fault_is_reported_at_once() -> None:
    spec = fraud_spec(
        traffic=0.5,
        rollout={"steps": [{"traffic": 0.2}, {"traffic": 0.1}, {"traffic": 1.0, "min_units": 5}]},
    )
    with pytest.raises(Exception) as caught:
        parse_spec(spec)
    fields = [d["field"] for d in caught.value.details]  # type: ignore[attr-defined]
    assert fields == ["rollout.steps.1.traffic", "rollout.steps.2.traffic", "rollout.steps.2"]


def test_a_valid_rollout_is_stored_and_reads_back_as_written(api: TestClient) -> None:
    created = api.post("/v1/experiments", json=fraud_spec(rollout=_rollout()), headers=ADMIN)
    assert created.status_code == 201, created.text
    rollout = created.json()["spec"]["rollout"]
    assert [s["min_duration"] for s in rollout["steps"]] == ["1h", "6h", "1d", "0s"]
    assert [s["traffic"] for s in rollout["steps"]] == [0.01, 0.05, 0.2, 1.0]
    assert created.json()["rollout"] is None  # a draft has not started its ramp
    again = api.get("/v1/experiments/fraud-v7", headers=ADMIN).json()
    assert again["spec"] == created.json()["spec"]
    # The stored form parses to the same spec (PUT of what GET gave is no change).
    same = api.put("/v1/experiments/fraud-v7", json=again["spec"], headers=ADMIN)
    assert same.json()["version"] == 1


def test_specs_without_a_rollout_are_unchanged() -> None:
    spec = parse_spec(fraud_spec())
    assert spec.rollout is None
    assert ExperimentSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (2.5, 2.5),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("30min", 1800.0),
        ("6h", 21_600.0),
        ("1.5h", 5400.0),
        ("1d", 86_400.0),
        ("2w", 1_209_600.0),
        ("1h30m", 5400.0),
        ("1d 6h", 108_000.0),
        (" 2H ", 7200.0),
        ("PT6H", 21_600.0),
        ("P1DT12H", 129_600.0),
        ("pt90s", 90.0),
        (dt.timedelta(minutes=3), 180.0),
    ],
)
def test_durations_people_write(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "h", "1x", "an hour", "1h-", "-1h", "1e3s", "P", "PT", "Pnope", None, [], True]
)
def test_what_is_not_a_duration_is_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m"), (3600, "1h"), (5400, "1h30m"), (86_400, "1d"),
     (108_000, "1d6h"), (90.5, "1m30.5s"), (1_209_600, "14d")],
)  # fmt: skip
def test_the_compact_form_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
