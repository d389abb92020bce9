"""``sharpen models``, ``analyze`` and ``backtest`` against a live server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml
from typer.testing import CliRunner

from service.cli import app
from tests._live import LiveServer
from tests.analysis._paired_sim import SPEC, paired
from tests.analysis._sim import records
from tests.analysis.test_http_backtest import _csv
from tests.conftest import ADMIN_KEY, CLIENT_KEY

runner = CliRunner()


def test_cli_end_to_end(live_server: LiveServer, tmp_path: Path) -> None:
    recs = records(
        2000, seed=81, base_error=0.04, planted={"country": "US", "plan": "pro"}, planted_error=0.5
    )
    r = httpx.post(
        f"{live_server.url}/v1/models/ranker/records",
        json={"records": recs},
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    common = ["--url", live_server.url, "--api-key", ADMIN_KEY]

    late = [{**record, "record_id": f"late-{i}"} for i, record in enumerate(recs[:300])]
    for record in late:
        del record["label"]
    r = httpx.post(
        f"{live_server.url}/v1/models/ranker/records",
        json={"records": late},
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    labels = [{"record_id": f"late-{i}", "label": 1} for i in range(100)]
    r = httpx.post(
        f"{live_server.url}/v1/models/ranker/labels",
        json={"labels": labels},
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        timeout=30,
    )
    assert r.json() == {"matched": 100, "unmatched": 0}

    out = runner.invoke(app, ["models", *common], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    # 2,000 labelled on arrival + 100 late: labelled 2,100, late labels 100 (not 100 alone).
    row = next(line for line in out.output.splitlines() if "ranker" in line)
    cells = [c.strip() for c in row.strip().strip("│").split("│")]
    assert cells == ["ranker", "2,300", "2,300", "2,100", "100", "yes"], cells

    out = runner.invoke(app, ["analyze", "ranker", *common], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    for text in (
        "try first",
        "levers by errors they are expected to fix",
        "expected fixed",
        "country=US & plan=pro",
        "calibration (reliability diagram)",
        "ECE",
        "worst segments",
        "0-1 loss",
    ):
        assert text in out.output, text
    day = next(line for line in out.output.splitlines() if "│ day " in line)
    assert "2023-11-1" in day  # the per-day series, not only in --json
    loss_line = next(line for line in out.output.splitlines() if "0-1 loss" in line)
    assert "%" not in loss_line.split("0-1 loss")[1]  # a mean loss is not a percentage

    out = runner.invoke(
        app,
        ["analyze", "ranker", "--errors", "all", "--limit", "3", *common],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0, out.output
    assert "next page: --cursor" in out.output
    cursor = out.output.split("--cursor ")[1].split()[0]
    nxt = runner.invoke(
        app,
        [
            "analyze",
            "ranker",
            "--errors",
            "all",
            "--limit",
            "3",
            "--cursor",
            cursor,
            "--json",
            *common,
        ],
    )
    assert nxt.exit_code == 0, nxt.output
    assert len(json.loads(nxt.output)["errors"]) == 3

    out = runner.invoke(app, ["analyze", "ranker", "--json", *common])
    assert out.exit_code == 0
    assert json.loads(out.output)["slices"][0]["attributes"] == {"country": "US", "plan": "pro"}

    out = runner.invoke(app, ["analyze", "ghost", *common])
    assert out.exit_code == 1 and "no records" in out.output

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    history = tmp_path / "history.csv"
    history.write_text(
        _csv(
            paired(
                3000, seed=82, base_error=0.15, candidate_error={"BR": 0.1, "DE": 0.1, "US": 0.1}
            )
        )
    )
    out = runner.invoke(
        app, ["backtest", str(history), "--spec", str(spec), *common], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert "historical evidence" in out.output and "APPROVED" in out.output
    assert "alpha 0.025" in out.output

    as_json = tmp_path / "history.json"
    as_json.write_text(
        json.dumps(
            paired(500, seed=83, base_error=0.15, candidate_error={"BR": 0.3, "DE": 0.1, "US": 0.1})
        )
    )
    out = runner.invoke(app, ["backtest", str(as_json), "--spec", str(spec), "--json", *common])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["verdict"]["approved"] is False
    out = runner.invoke(
        app,
        ["backtest", str(as_json), "--spec", str(spec), "--dry-run", *common],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0 and "dry run: not journaled" in out.output
    out = runner.invoke(app, ["backtest", "--help"], env={"COLUMNS": "200"})
    assert "<variant>.prediction" in out.output and "true_positive" in out.output

    out = runner.invoke(app, ["backtest", str(as_json), *common])
    assert out.exit_code == 1 and "exactly one of --spec" in out.output
