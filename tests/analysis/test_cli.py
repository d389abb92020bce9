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

    out = runner.invoke(app, ["models", *common])
    assert out.exit_code == 0, out.output
    assert "ranker" in out.output and "2,000" in out.output

    out = runner.invoke(app, ["analyze", "ranker", *common], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    for text in (
        "try first",
        "levers by error mass",
        "country=US & plan=pro",
        "calibration (reliability diagram)",
        "ECE",
        "worst segments",
    ):
        assert text in out.output, text

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

    out = runner.invoke(app, ["backtest", str(as_json), *common])
    assert out.exit_code == 1 and "exactly one of --spec" in out.output
