"""``sharpen review`` against a live server: terminal, Markdown and JSON, and its errors."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from service.cli import app
from tests._live import LiveServer
from tests.conftest import ADMIN_KEY, CLIENT_KEY

runner = CliRunner()


def test_review_from_the_command_line(live_server: LiveServer) -> None:
    records = [{"record_id": f"r{i}", "prediction": i % 2, "label": 1} for i in range(50)]
    answer = httpx.post(
        f"{live_server.url}/v1/models/fraud/records",
        json={"records": records},
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    common = ["--url", live_server.url, "--api-key", ADMIN_KEY]

    done = runner.invoke(app, ["review", "--markdown", *common])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("# Weekly model review (")
    assert "## 1. fraud: pending" in done.output
    assert "The model monitor has not reported on this line yet." in done.output

    done = runner.invoke(app, ["review", "--json", "--model", "fraud", "--since", "2w", *common])
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["period_s"] == 14 * 86_400
    assert [line["model"] for line in body["lines"]] == ["fraud"]

    done = runner.invoke(app, ["review", *common])
    assert done.exit_code == 0, done.output
    assert "Weekly model review" in done.output

    done = runner.invoke(app, ["review", "--since", "soon", *common])
    assert done.exit_code == 1
    assert "since" in done.output
    done = runner.invoke(app, ["review", "--model", "ghost", *common])
    assert done.exit_code == 1 and "ghost" in done.output
