"""The experiment page's rollout: the spec's steps, the step timeline and what the gate
says, and the ramp button behind a confirmation with a CSRF-checked form."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.ui._rollout_view import step_marks
from service.ui.plots import TimePoint, units_plot
from tests.conftest import ADMIN
from tests.rollout._support import ramped_spec
from tests.ui.helpers import csrf_token, elements, login

KEY = "fraud-v7"


def _start(api: TestClient) -> None:
    assert api.post("/v1/experiments", json=ramped_spec(KEY), headers=ADMIN).status_code == 201
    assert api.post(f"/v1/experiments/{KEY}/start", headers=ADMIN).status_code == 200


def _rows(html: str) -> list[tuple[str, str]]:
    return [
        (el.attrs["data-step"], el.attrs["data-state"])
        for el in elements(html)
        if el.tag == "tr" and "data-step" in el.attrs
    ]


def test_the_page_shows_the_steps_and_what_the_gate_waits_for(api: TestClient) -> None:
    login(api)
    assert api.post("/v1/experiments", json=ramped_spec(KEY), headers=ADMIN).status_code == 201
    draft = api.get(f"/ui/experiments/{KEY}").text
    assert "1% (at least 1h, 2,000 units) → 5% (at least 6h) → 20% (at least 1d) → 100%" in draft
    assert 'id="action-ramp"' not in draft
    assert api.post(f"/v1/experiments/{KEY}/start", headers=ADMIN).status_code == 200
    page = api.get(f"/ui/experiments/{KEY}").text
    assert 'id="rollout" data-step="1" data-gate="waiting"' in page
    assert _rows(page) == [("1", "current"), ("2", "pending"), ("3", "pending"), ("4", "pending")]
    assert "2,000 more units at this step (0 of 2,000)" in page
    assert "Ramp to 5%" in page
    live = api.get(f"/ui/experiments/{KEY}/live").text  # refreshed with the results
    assert 'id="rollout" data-step="1"' in live


def test_ramping_from_the_dashboard_needs_the_csrf_token(api: TestClient) -> None:
    token = login(api)
    _start(api)
    confirm = api.get(f"/ui/experiments/{KEY}/confirm/ramp")
    assert confirm.status_code == 200
    assert "Ramp fraud-v7 to 5%?" in confirm.text
    assert "The gate is still waiting for:" in confirm.text
    assert csrf_token(confirm.text) == token
    options = [el.attrs["value"] for el in elements(confirm.text) if el.tag == "option"]
    assert options == ["0.05", "0.2", "1.0"]

    forged = api.post(f"/ui/experiments/{KEY}/ramp", data={"to": "0.2"})
    assert forged.status_code == 403
    assert api.get(f"/v1/experiments/{KEY}", headers=ADMIN).json()["rollout"]["step"] == 1
    bad = api.post(f"/ui/experiments/{KEY}/ramp", data={"csrf_token": token, "to": "0.3"})
    assert bad.status_code == 422

    done = api.post(
        f"/ui/experiments/{KEY}/ramp",
        data={"csrf_token": token, "to": "0.2", "reason": "canary clean"},
        follow_redirects=True,
    )
    assert done.status_code == 200
    assert "Rollout ramped up" in done.text
    assert _rows(done.text) == [("1", "done"), ("2", "skipped"), ("3", "current"),
                                ("4", "pending")]  # fmt: skip
    record = api.get(f"/v1/experiments/{KEY}", headers=ADMIN).json()
    audit = record["audit"][-1]
    assert (audit["action"], audit["actor"]) == ("ramp", "tester")
    assert audit["detail"]["via"] == "dashboard" and audit["detail"]["reason"] == "canary clean"

    api.post(f"/ui/experiments/{KEY}/ramp", data={"csrf_token": token}, follow_redirects=False)
    at_full = api.get(f"/ui/experiments/{KEY}").text
    assert 'id="action-ramp"' not in at_full and "the ramp is done" in at_full
    assert api.get(f"/ui/experiments/{KEY}/confirm/ramp").status_code == 409


def test_units_over_time_marks_each_steps_start() -> None:
    hour = 1_700_000_000 // 3600 * 3600
    points = [
        TimePoint(hour + h * 3600, {"baseline": 10 * h, "candidate": 10 * h}) for h in (0, 1, 2)
    ]
    svg = units_plot(
        points,
        ["baseline", "candidate"],
        steps=step_marks(
            {"schedule": [
                {"step": 1, "traffic": 0.01, "started_at": hour + 600},
                {"step": 2, "traffic": 0.05, "started_at": hour + 5000},
                {"step": 3, "traffic": 0.2, "started_at": None},
            ]}
        ),
    )  # fmt: skip
    marks = [el for el in elements(svg) if "rollout-step" in el.classes]
    assert [(el.attrs["data-step"], el.num("at")) for el in marks] == [
        ("1", hour + 600), ("2", hour + 5000),
    ]  # fmt: skip
    assert float(marks[0].attrs["x1"]) < float(marks[1].attrs["x1"])
    assert ">5%</text>" in svg
