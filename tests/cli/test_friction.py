"""First-hour friction: spec typos name the nearest field (API and CLI), the dev key is found
from any folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.cli import app
from service.cli._http import dev_keys_path, find_dev_key, remember_dev_keys
from tests._factories import simple_spec
from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY

runner = CliRunner()


def _typo_spec() -> dict[str, object]:
    spec = simple_spec("exp-typo")
    spec["metrics"][0]["mdee"] = spec["metrics"][0].pop("mde")
    return spec


def test_the_api_suggests_the_nearest_field(api: TestClient) -> None:
    answer = api.post("/v1/experiments", json=_typo_spec(), headers=ADMIN)
    assert answer.status_code == 422, answer.text
    details = answer.json()["error"]["details"]
    typo = next(d for d in details if d["field"] == "metrics.0.mdee")
    assert typo["message"].endswith("did you mean `mde`?")


def test_the_cli_suggests_the_nearest_field(live_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_typo_spec()))
    out = runner.invoke(
        app,
        ["apply", str(path), "--url", live_server.url, "--api-key", ADMIN_KEY],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code != 0
    assert "metrics.0.mdee" in out.output and "did you mean `mde`?" in out.output


def test_dev_keys_are_found_from_any_folder(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = live_server.url
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("SHARPEN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert find_dev_key(url, "admin") is None

    # What `serve --dev` remembers per URL in the user's config dir.
    remember_dev_keys(url + "/", {"admin": "sk_admin_remembered", "client": "sk_client_r"})
    assert find_dev_key(url, "admin") == "sk_admin_remembered"
    assert find_dev_key("http://127.0.0.1:9999", "admin") is None, "another service's keys"
    remember_dev_keys(url, {"admin": ADMIN_KEY, "client": "sk_client_r"})
    monkeypatch.delenv("SHARPEN_API_KEY", raising=False)
    out = runner.invoke(app, ["list", "--url", url], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output  # no --api-key: the remembered key, from elsewhere

    # SHARPEN_DATA_DIR (the service's data dir) comes first.
    data = tmp_path / "data"
    data.mkdir()
    dev_keys_path(data).write_text('{"admin": "sk_admin_from_data_dir"}')
    monkeypatch.setenv("SHARPEN_DATA_DIR", str(data))
    assert find_dev_key(url, "admin") == "sk_admin_from_data_dir"
