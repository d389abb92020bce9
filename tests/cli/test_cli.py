"""The admin CLI against a real uvicorn server."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from service.cli import app
from tests._live import LiveServer
from tests.conftest import ADMIN_KEY, CLIENT_KEY, ROOT

runner = CliRunner()
EXAMPLE = str(ROOT / "examples" / "fraud-v7.yaml")


def _run(server: LiveServer, *args: str, key: str = ADMIN_KEY) -> tuple[int, str]:
    result = runner.invoke(
        app, list(args), env={"SHARPEN_URL": server.url, "SHARPEN_API_KEY": key, "COLUMNS": "200"}
    )
    return result.exit_code, result.output


def test_apply_start_get(live_server: LiveServer) -> None:
    code, out = _run(live_server, "apply", EXAMPLE)
    assert code == 0, out
    assert "created fraud-v7" in out and "draft" in out
    code, out = _run(live_server, "apply", EXAMPLE)
    assert code == 0 and "updated fraud-v7" in out and "version 1" in out
    code, out = _run(live_server, "start", "fraud-v7")
    assert code == 0 and "running" in out
    code, out = _run(live_server, "get", "fraud-v7")
    assert code == 0
    assert "status running" in out and "precision" in out and "tester" in out
    code, out = _run(live_server, "get", "fraud-v7", "--json")
    assert code == 0 and '"status": "running"' in out
    code, out = _run(live_server, "list")
    assert code == 0 and "fraud-v7" in out


def test_apply_edits_a_draft_and_refuses_a_running_one(
    live_server: LiveServer, tmp_path: Path
) -> None:
    spec = yaml.safe_load(Path(EXAMPLE).read_text())
    _run(live_server, "apply", EXAMPLE)
    spec["traffic"] = 0.5
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(spec))
    code, out = _run(live_server, "apply", str(edited))
    assert code == 0 and "version 2" in out
    _run(live_server, "start", "fraud-v7")
    spec["traffic"] = 0.7
    edited.write_text(yaml.safe_dump(spec))
    code, out = _run(live_server, "apply", str(edited))
    assert code == 1 and "frozen" in out and "409" in out


def test_cli_reports_bad_specs_by_field(live_server: LiveServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    spec = yaml.safe_load(Path(EXAMPLE).read_text())
    del spec["metrics"][0]["mde"]
    bad.write_text(yaml.safe_dump(spec))
    code, out = _run(live_server, "apply", str(bad))
    assert code == 1 and "metrics.0.mde" in out
    bad.write_text("key: [unclosed")
    code, out = _run(live_server, "apply", str(bad))
    assert code == 1 and "not valid YAML" in out


def test_cli_lifecycle_and_errors(live_server: LiveServer) -> None:
    _run(live_server, "apply", EXAMPLE)
    code, out = _run(live_server, "stop", "fraud-v7")
    assert code == 1 and "draft" in out
    _run(live_server, "start", "fraud-v7")
    code, out = _run(live_server, "ship", "fraud-v7", "--reason", "clean win")
    assert code == 0 and "shipped" in out
    code, out = _run(live_server, "get", "nope")
    assert code == 1 and "does not exist" in out
    code, out = _run(live_server, "list", key=CLIENT_KEY)
    assert code == 1 and "403" in out


def test_cli_without_reachable_server() -> None:
    result = runner.invoke(app, ["list", "--url", "http://127.0.0.1:9", "--api-key", "whatever-1"])
    assert result.exit_code == 1 and "cannot reach sharpen" in result.output
