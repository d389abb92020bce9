"""``sharpen plan`` and ``sharpen report`` against a real uvicorn server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from service.cli import app
from tests._factories import simple_spec
from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, ROOT, results_with_units

runner = CliRunner()
EXAMPLE = ROOT / "examples" / "fraud-v7.yaml"


def _run(server: LiveServer, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, list(args), env={"SHARPEN_URL": server.url, "SHARPEN_API_KEY": ADMIN_KEY}
    )
    return result.exit_code, result.stdout


def test_plan_equals_the_stored_experiments_plan_and_says_it_in_words(
    live_server: LiveServer,
) -> None:
    code, out = _run(live_server, "plan", str(EXAMPLE), "--json")
    assert code == 0, out
    from_cli = json.loads(out)
    spec = yaml.safe_load(EXAMPLE.read_text())
    created = httpx.post(f"{live_server.url}/v1/experiments", json=spec, headers=ADMIN)
    assert created.status_code == 201, created.text
    stored = httpx.get(f"{live_server.url}/v1/experiments/fraud-v7/plan", headers=ADMIN).json()
    assert stored.pop("status") == "draft"
    assert from_cli == stored
    assert from_cli["units_per_variant"] > 0 and from_cli["days"] == 14

    code, out = _run(live_server, "plan", str(EXAMPLE))
    assert code == 0, out
    plan = stored
    per_variant, total = plan["units_per_variant"], plan["total_units"]
    traffic_days = -(-total // 20_000)
    words = " ".join(out.split())
    assert (
        f"needs {per_variant:,} users per variant ({total:,} in total): "
        f"{traffic_days} day{'s' if traffic_days > 1 else ''} at 20,000/day; "
        "14 days minimum → 14 days"
    ) in words
    assert "group sequential with 14 looks" in words
    for row in plan["mde_curve"]:
        assert f"{row['mde']:.1%}" in out
    assert "◀ plan" in out


def test_plan_without_a_baseline_and_report_of_unknown_fail_cleanly(
    live_server: LiveServer, tmp_path: Path
) -> None:
    spec = simple_spec("no-baseline")
    del spec["metrics"][0]["baseline_mean"]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out = _run(live_server, "plan", str(path))
    assert code == 1
    assert "cannot plan" in out and "baseline_mean" in out

    result = runner.invoke(
        app, ["report", "nope", "--url", live_server.url, "--api-key", ADMIN_KEY]
    )
    assert result.exit_code == 1
    assert "404" in result.output


@pytest.fixture
def worker_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    env = {**server_env, "SHARPEN_RUN_WORKER": "true", "SHARPEN_AGGREGATOR_BLOCK_MS": "20"}
    server = LiveServer(env, log=tmp_path / "server.log").start()
    yield server
    server.stop()


def _events(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    events = []
    for i in range(n):
        variant = "control" if i % 2 else "treatment"
        p = 0.10 if variant == "control" else 0.16
        events.append(
            {
                "event_id": f"e{i}",
                "experiment": "exp-report",
                "unit_id": f"u{i}",
                "variant": variant,
                "timestamp": time.time(),
                "values": {"converted": float(rng.random() < p)},
                "attributes": {"country": "US" if i % 3 else "CA"},
            }
        )
    return events


def test_report_of_an_experiment_with_data(worker_server: LiveServer) -> None:
    url = worker_server.url
    spec = simple_spec("exp-report", segments=["country"])
    assert httpx.post(f"{url}/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    assert httpx.post(f"{url}/v1/experiments/exp-report/start", headers=ADMIN).status_code == 200
    sent = httpx.post(f"{url}/v1/events", json={"events": _events(600)}, headers=CLIENT)
    assert sent.status_code == 202, sent.text
    with httpx.Client(base_url=url) as http:
        results = results_with_units(http, "exp-report", 600, timeout_s=60)
    assert results["units"] == {"control": 300, "treatment": 300}

    code, out = _run(worker_server, "report", "exp-report")
    assert code == 0, out
    assert "exp-report · running" in out
    assert "metrics" in out and "decision: " in out
    overall = next(r for r in results["metrics"] if r["segment"] is None)
    lines = [line for line in out.splitlines() if "│ conversion" in line]
    assert len(lines) == 3  # the whole population, CA and US
    assert any(
        "all" in line and f"{overall['relative']['estimate']:+.1%}" in line for line in lines
    )
    assert "country=CA" in out and "country=US" in out
    assert "300 of" in out  # progress against the plan

    code, md = _run(worker_server, "report", "exp-report", "--markdown")
    assert code == 0, md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[0].startswith("| metric | role | variant | segment |")
    assert set(table[1]) <= {"|", "-"}
    assert sum("| conversion |" in line for line in table) == 3
    assert f"**Decision: {results['decision']['action']}" in md

    code, raw = _run(worker_server, "report", "exp-report", "--json", "--overall")
    assert code == 0
    assert json.loads(raw)["units"] == results["units"]

    code, short = _run(worker_server, "report", "exp-report", "--overall")
    assert code == 0
    assert sum("│ conversion" in line for line in short.splitlines()) == 1
