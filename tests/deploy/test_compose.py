"""deploy/compose.yaml: valid against the Compose Specification's schema (vendored), its
services run real commands with real settings, and the files it mounts configure
Redis, Prometheus, Alertmanager and Grafana as it says (checked with their own tools
where the binaries exist)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import redis

from service.embedded import free_port
from tests._wait import wait_for
from tests.conftest import ROOT, require_binary
from tests.deploy._support import (
    DEPLOY,
    SETTINGS_ENV,
    TEST_SECRETS,
    answers,
    check_cli,
    entrypoint,
    load_yaml,
    refusal,
    run_container,
)

COMPOSE = load_yaml(DEPLOY / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCHEMA = json.loads((ROOT / "tests" / "deploy" / "vendor" / "compose-spec.json").read_text())
API_SERVICES = ("api-1", "api-2")
SHARPEN_SERVICES = (*API_SERVICES, "worker")


def _env_file() -> dict[str, str]:
    """The variables of the shipped sharpen.env.example (compose reads sharpen.env)."""
    pairs = {}
    for line in (DEPLOY / "sharpen.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def _mounts(service: str) -> dict[str, str]:
    """Bind mounts of ``service``: container path -> host path (relative to deploy/)."""
    out = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            out[target] = source
    return out


def test_compose_file_matches_the_compose_spec_schema() -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    validator.validate(COMPOSE)
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["worker"]["comand"] = ["worker"]
    assert any("comand" in error.message for error in validator.iter_errors(broken))


def test_the_stack_has_every_part() -> None:
    assert set(SERVICES) == {*SHARPEN_SERVICES, "redis", "prometheus", "alertmanager", "grafana"}
    assert entrypoint() == ["sharpen"]
    for name in API_SERVICES:
        assert SERVICES[name]["command"] == ["serve", "--no-worker"]
        assert SERVICES[name]["networks"]["default"]["aliases"] == ["api"]
    assert SERVICES["worker"]["command"] == ["worker"]
    for name in SHARPEN_SERVICES:
        check_cli(SERVICES[name]["command"])
        service = SERVICES[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["env_file"] == [{"path": "sharpen.env", "required": True}]
    host_ports = [p.split(":")[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports))


def test_services_set_only_real_settings() -> None:
    named = set(_env_file())
    for name in SHARPEN_SERVICES:
        named |= set(SERVICES[name]["environment"])
    assert named <= SETTINGS_ENV, named - SETTINGS_ENV
    assert set(_env_file().values()) == {""}, "the example ships no usable key"
    env = SERVICES["api-1"]["environment"]
    assert env["SHARPEN_REDIS_URL"].startswith("redis://redis:")
    assert SERVICES["worker"]["environment"]["SHARPEN_REDIS_URL"] == env["SHARPEN_REDIS_URL"]


def test_every_mounted_file_exists() -> None:
    for service in SERVICES:
        for target, source in _mounts(service).items():
            assert (DEPLOY / source).exists(), f"{service}: {source} (for {target})"
    assert _mounts("prometheus") == {"/etc/prometheus": "./prometheus"}
    assert _mounts("alertmanager") == {"/etc/alertmanager": "./alertmanager"}


def _command_value(command: list[str], flag: str) -> str:
    for item in command:
        if item.startswith(f"{flag}="):
            return item.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {command}")


def test_redis_runs_with_aof_as_configured(tmp_path: Path) -> None:
    binary = require_binary("redis-server", "redis-server")
    args = SERVICES["redis"]["command"]
    assert args[0] == "redis-server"
    port = free_port()
    # The stack's own arguments; only the data directory and the port are this test's.
    options = [str(tmp_path) if arg == "/data" else arg for arg in args[1:]]
    assert options != args[1:], "the data directory is /data (the volume)"
    options += ["--port", str(port), "--bind", "127.0.0.1"]
    process = subprocess.Popen([binary, *options], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, decode_responses=True)

    def up() -> bool:
        assert process.poll() is None, f"redis-server exited {process.returncode}"
        return bool(client.ping())

    try:
        wait_for(up, what="the stack's redis-server to answer", timeout_s=10)
        config = client.config_get("*")
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["save"] == "3600 1 300 100 60 10000"
        assert config["maxmemory-policy"] == "noeviction"
        client.set("k", "v")
        wait_for(lambda: list(tmp_path.rglob("*.aof")), what="the AOF file")
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=20)
    assert ["/data"] == [v.split(":")[1] for v in SERVICES["redis"]["volumes"]]
    assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def _healthcheck_script(service: str) -> tuple[str, int]:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    port = re.search(r"127\.0\.0\.1:(\d+)/", test[3])
    assert port is not None
    return test[3], int(port.group(1))


def test_api_and_worker_commands_serve_with_the_stack_settings(
    redis_url: str, tmp_path: Path
) -> None:
    """Each service's command, with its environment, outside Docker; its healthcheck passes."""
    for name in ("api-1", "worker"):
        service = SERVICES[name]
        script, port = _healthcheck_script(name)
        env = {
            **_env_file(),
            **service["environment"],
            **TEST_SECRETS,
            "SHARPEN_REDIS_URL": redis_url,
        }
        variable = "SHARPEN_PORT" if name == "api-1" else "SHARPEN_WORKER_METRICS_PORT"
        assert int(env[variable]) == port
        mine = free_port()
        log = tmp_path / f"{name}.log"
        with run_container(service["command"], env, log=log, ports={variable: mine}) as process:
            path = "/healthz" if name == "api-1" else "/metrics"
            answers(f"http://127.0.0.1:{mine}{path}", process, log)
            here = script.replace(f":{port}/", f":{mine}/")
            done = subprocess.run([sys.executable, "-c", here], capture_output=True, timeout=30)
            assert done.returncode == 0, done.stderr
            if name == "api-1":
                assert httpx.get(f"http://127.0.0.1:{mine}/readyz").status_code == 200
    # Without sharpen.env filled in, the API refuses to start, naming what is missing.
    env = {**_env_file(), **SERVICES["api-1"]["environment"]}
    said = refusal(SERVICES["api-1"]["command"], env)
    assert "SHARPEN_ADMIN_KEYS" in said


@pytest.mark.needs_prometheus
def test_prometheus_config_loads_the_shipped_rules_and_scrapes_the_stack() -> None:
    promtool = require_binary("promtool", "prometheus")
    config_path = DEPLOY / "prometheus" / "prometheus.yml"
    assert _command_value(SERVICES["prometheus"]["command"], "--config.file") == (
        "/etc/prometheus/prometheus.yml"
    )
    done = subprocess.run(
        [promtool, "check", "config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    rules = load_yaml(DEPLOY / "prometheus" / "sharpen-rules.yml")
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"Checking {DEPLOY / 'prometheus' / 'sharpen-rules.yml'}" in out
    assert f"SUCCESS: {count} rules found" in out

    config = load_yaml(config_path)
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in config["scrape_configs"]
    }
    api_port = SERVICES["api-1"]["environment"]["SHARPEN_PORT"]
    worker_port = SERVICES["worker"]["environment"]["SHARPEN_WORKER_METRICS_PORT"]
    assert targets["sharpen-api"] == [f"{name}:{api_port}" for name in API_SERVICES]
    assert targets["sharpen-worker"] == [f"worker:{worker_port}"]
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]
    assert "9093:9093" in SERVICES["alertmanager"]["ports"]


def test_alertmanager_config_is_valid_and_groups_replicas() -> None:
    config = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    assert config["route"]["group_by"] == ["alertname", "experiment"]
    assert _command_value(SERVICES["alertmanager"]["command"], "--config.file") == (
        "/etc/alertmanager/alertmanager.yml"
    )
    amtool = require_binary("amtool", "prometheus-alertmanager")
    done = subprocess.run(
        [amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_grafana_provisions_prometheus_and_the_shipped_dashboard() -> None:
    mounts = _mounts("grafana")
    provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
    sources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert [(s["type"], s["url"], s["isDefault"]) for s in sources] == [
        ("prometheus", "http://prometheus:9090", True)
    ]
    assert "9090:9090" in SERVICES["prometheus"]["ports"]
    providers = load_yaml(provisioning / "dashboards" / "sharpen.yml")["providers"]
    assert len(providers) == 1
    folder = providers[0]["options"]["path"]
    dashboards = {t: s for t, s in mounts.items() if t.startswith(f"{folder}/")}
    assert dashboards == {f"{folder}/sharpen-dashboard.json": "./grafana/sharpen-dashboard.json"}
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home in dashboards
    # The dashboard asks for a Prometheus data source through its variable.
    dashboard = json.loads((DEPLOY / "grafana" / "sharpen-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert (
        "${GRAFANA_ADMIN_PASSWORD:?"
        in SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    )
