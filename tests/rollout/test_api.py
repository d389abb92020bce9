"""``POST /v1/experiments/{key}/ramp`` and the rollout in the results document, in-process
with Redis for real; ``sharpen ramp`` and ``sharpen get`` against a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.cli import app
from tests._factories import simple_spec
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, ROOT
from tests.rollout._support import ramped_spec

EXAMPLE = ROOT / "examples" / "fraud-v8-rollout.yaml"


def _create_and_start(api: TestClient, spec: dict[str, Any]) -> None:
    assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    started = api.post(f"/v1/experiments/{spec['key']}/start", headers=ADMIN)
    assert started.status_code == 200, started.text


def _ramp(api: TestClient, key: str, body: dict[str, Any] | None = None) -> Any:
    return api.post(f"/v1/experiments/{key}/ramp", json=body, headers=ADMIN)


def _fields(answer: Any) -> list[str]:
    assert answer.status_code == 422, answer.text
    return [d["field"] for d in answer.json()["error"]["details"]]


def _served_traffic(api: TestClient, key: str) -> float:
    return float(api.get("/v1/config", headers=CLIENT).json()["experiments"][key]["traffic"])


def test_a_person_ramps_step_by_step_and_the_config_follows(api: TestClient) -> None:
    key = "fraud-v7"
    assert api.post("/v1/experiments", json=ramped_spec(key), headers=ADMIN).status_code == 201
    draft = _ramp(api, key)
    assert draft.status_code == 409 and "draft" in draft.json()["error"]["message"]
    assert api.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200
    wait_for(lambda: _served_traffic(api, key) == 0.01, what="the first step's traffic")

    assert _fields(_ramp(api, key, {"to": 0.3})) == ["to"]
    assert "0.05, 0.2, 1" in _ramp(api, key, {"to": 0.3}).json()["error"]["details"][0]["message"]
    assert _fields(_ramp(api, key, {"to": 1.5})) == ["to"]
    assert _fields(_ramp(api, key, {"share": 0.2})) == ["share"]

    moved = _ramp(api, key, {"reason": "first hour looks clean"})
    assert moved.status_code == 200, moved.text
    record = moved.json()
    assert (record["rollout"]["step"], record["rollout"]["traffic"], record["version"]) == (
        2, 0.05, 2,
    )  # fmt: skip
    audit = record["audit"][-1]
    assert (audit["action"], audit["actor"], audit["version"]) == ("ramp", "tester", 2)
    assert audit["detail"]["reason"] == "first hour looks clean"
    assert audit["detail"]["via"] == "api" and audit["detail"]["gate"] == "waiting"
    assert (audit["detail"]["from_traffic"], audit["detail"]["traffic"]) == (0.01, 0.05)
    wait_for(lambda: _served_traffic(api, key) == 0.05, what="the config to serve 5 %")

    jumped = _ramp(api, key, {"to": 1.0})
    assert jumped.status_code == 200
    assert [h["step"] for h in jumped.json()["rollout"]["history"]] == [1, 2, 4]
    wait_for(lambda: _served_traffic(api, key) == 1.0, what="the config to serve the full share")
    last = _ramp(api, key)
    assert last.status_code == 409 and "last step" in last.json()["error"]["message"]

    results = api.get(f"/v1/experiments/{key}/results", headers=ADMIN).json()
    rollout = results["rollout"]
    assert (rollout["step"], rollout["steps"], rollout["traffic"]) == (4, 4, 1.0)
    assert [s["state"] for s in rollout["schedule"]] == ["done", "done", "skipped", "current"]
    assert rollout["gate"]["state"] == "complete"


def test_experiments_without_a_rollout_keep_their_traffic(api: TestClient) -> None:
    _create_and_start(api, simple_spec("flat", traffic=0.5))
    refused = _ramp(api, "flat")
    assert refused.status_code == 409
    assert "no rollout" in refused.json()["error"]["message"]
    assert api.get("/v1/experiments/flat", headers=ADMIN).json()["rollout"] is None
    assert api.get("/v1/experiments/flat/results", headers=ADMIN).json()["rollout"] is None
    assert _ramp(api, "nope").status_code == 404


def _cli(server: LiveServer, *args: str) -> tuple[int, str]:
    env = {"SHARPEN_URL": server.url, "SHARPEN_API_KEY": ADMIN_KEY, "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_cli_ramp_and_get(live_server: LiveServer, tmp_path: Path) -> None:
    code, out = _cli(live_server, "plan", str(EXAMPLE))
    assert code == 0, out
    assert "through the ramp (1% for 2d, 5% for 1d, 25% for 1d, then 100%)" in out
    code, out = _cli(live_server, "apply", str(EXAMPLE))
    assert code == 0, out
    code, out = _cli(live_server, "get", "fraud-v8")
    assert code == 0 and "rollout: 4 steps, not started (advances by itself)" in out
    assert _cli(live_server, "start", "fraud-v8")[0] == 0
    code, out = _cli(live_server, "get", "fraud-v8")
    assert code == 0, out
    assert "rollout: step 1 of 4 at 1% of 100% (advances by itself)" in out
    assert "waiting before step 2 (5%) for:" in out
    assert "more at this step (2h in all)" in out
    assert "400 more units at this step (0 of 400)" in out

    code, out = _cli(live_server, "ramp", "fraud-v8", "--to", "0.3")
    assert code == 1 and "to" in out and "0.05, 0.25, 1" in out
    code, out = _cli(live_server, "ramp", "fraud-v8", "--to", "0.25", "--reason", "canary ok")
    assert code == 0, out
    assert "fraud-v8: step 3 of 4, traffic 25% (version 2)" in out
    code, out = _cli(live_server, "get", "fraud-v8")
    assert "rollout: step 3 of 4 at 25% of 100%" in out and "skipped" in out
    assert "canary ok" in out  # the audit entry

    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["rollout"]["auto_advance"] = False
    spec["key"] = "fraud-v8-manual"
    manual = tmp_path / "manual.yaml"
    manual.write_text(yaml.safe_dump(spec))
    assert _cli(live_server, "apply", str(manual))[0] == 0
    assert _cli(live_server, "start", "fraud-v8-manual")[0] == 0
    code, out = _cli(live_server, "get", "fraud-v8-manual")
    assert "(a person advances it)" in out
