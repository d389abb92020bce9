"""deploy/k8s: valid Kubernetes objects (kubernetes-validate, strict), wired to each other,
setting only real settings, running real commands, probing endpoints that answer."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest

from service.embedded import free_port
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

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
OLDEST = "1.30.0"  # the oldest Kubernetes minor the manifests promise to fit


def _objects() -> dict[str, dict[str, Any]]:
    """``Kind/name`` -> object, for every manifest."""
    out = {}
    for path in MANIFESTS:
        obj = load_yaml(path)
        out[f"{obj['kind']}/{obj['metadata']['name']}"] = obj
    return out


OBJECTS = _objects()
API = OBJECTS["Deployment/sharpen-api"]
WORKER = OBJECTS["Deployment/sharpen-worker"]
CONFIG = OBJECTS["ConfigMap/sharpen-config"]["data"]
SECRET = OBJECTS["Secret/sharpen-secrets"]["stringData"]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _port(container: dict[str, Any], name: str) -> int:
    return int(next(p["containerPort"] for p in container["ports"] if p["name"] == name))


@pytest.mark.parametrize("version", [OLDEST, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_a_valid_kubernetes_object(path: Path, version: str) -> None:
    obj = load_yaml(path)
    kubernetes_validate.validate(obj, version, strict=True)
    # The check bites: a misspelt field is refused.
    broken = copy.deepcopy(obj)
    broken["metadata"]["lables"] = {"typo": "yes"}
    with pytest.raises(kubernetes_validate.ValidationError, match="lables"):
        kubernetes_validate.validate(broken, version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    assert [image["name"] for image in kustomization["images"]] == ["sharpen"]
    assert {_container(API)["image"], _container(WORKER)["image"]} == {"sharpen"}


def test_config_sets_only_real_settings_and_every_reference_resolves() -> None:
    assert set(CONFIG) | set(SECRET) <= SETTINGS_ENV, (set(CONFIG) | set(SECRET)) - SETTINGS_ENV
    assert {"SHARPEN_REDIS_URL", "SHARPEN_ADMIN_KEYS", "SHARPEN_CLIENT_KEYS"} <= set(SECRET)
    for deployment in (API, WORKER):
        container = _container(deployment)
        assert "env" not in container, "settings come from the ConfigMap and the Secret"
        refs = {(kind, ref[kind]["name"]) for ref in container["envFrom"] for kind in ref}
        assert refs == {("configMapRef", "sharpen-config"), ("secretRef", "sharpen-secrets")}


def test_commands_are_real_cli_commands() -> None:
    assert entrypoint() == ["sharpen"]
    for deployment, args in ((API, ["serve", "--no-worker"]), (WORKER, ["worker"])):
        container = _container(deployment)
        assert "command" not in container, "the image's ENTRYPOINT (sharpen) runs the args"
        assert container["args"] == args
        check_cli(container["args"])
    with pytest.raises(AssertionError, match="does not parse"):
        check_cli(["serve", "--no-workers"])


@pytest.mark.parametrize("deployment", [API, WORKER], ids=["api", "worker"])
def test_pods_run_non_root_read_only_with_resources(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    dockerfile_uid = 10001  # `useradd --uid 10001` in the Dockerfile
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # The read-only root gets a writable /tmp, and nothing else.
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # Pod labels match the selector; prometheus annotations name the real metrics port.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    named = "http" if deployment is API else "metrics"
    assert int(annotations["prometheus.io/port"]) == _port(container, named)


def test_service_and_disruption_budget_select_the_api_pods() -> None:
    labels = API["spec"]["template"]["metadata"]["labels"]
    worker_labels = WORKER["spec"]["template"]["metadata"]["labels"]
    for selector in (
        OBJECTS["Service/sharpen-api"]["spec"]["selector"],
        OBJECTS["PodDisruptionBudget/sharpen-api"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
        assert not selector.items() <= worker_labels.items()
    port = OBJECTS["Service/sharpen-api"]["spec"]["ports"][0]
    assert port["targetPort"] in {p["name"] for p in _container(API)["ports"]}
    assert (
        OBJECTS["PodDisruptionBudget/sharpen-api"]["spec"]["minAvailable"] < API["spec"]["replicas"]
    )
    assert _port(_container(API), "http") == int(CONFIG["SHARPEN_PORT"])
    assert _port(_container(WORKER), "metrics") == int(CONFIG["SHARPEN_WORKER_METRICS_PORT"])


def _probes(container: dict[str, Any]) -> dict[str, str]:
    return {
        kind: container[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        if kind in container
    }


def _env(secrets: dict[str, str]) -> dict[str, str]:
    return {**CONFIG, **SECRET, **secrets}


def test_api_pod_command_serves_its_probes(redis_url: str, tmp_path: Path) -> None:
    container = _container(API)
    probes = _probes(container)
    assert probes == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    port = free_port()
    env = _env({**TEST_SECRETS, "SHARPEN_REDIS_URL": redis_url})
    log = tmp_path / "api.log"
    with run_container(container["args"], env, log=log, ports={"SHARPEN_PORT": port}) as process:
        url = f"http://127.0.0.1:{port}"
        answers(f"{url}/healthz", process, log)
        for path in probes.values():
            assert httpx.get(url + path, timeout=5).status_code == 200, path
        assert httpx.get(f"{url}/readyz", timeout=5).json() == {"status": "ready"}
    said = log.read_text()
    assert "Application shutdown complete" in said  # SIGTERM: graceful (buffers flushed)
    # --no-worker: this pod aggregates nothing (the worker Deployment does).
    assert "aggregator" not in said.lower()


def test_worker_pod_command_serves_its_liveness_probe(redis_url: str, tmp_path: Path) -> None:
    container = _container(WORKER)
    assert set(_probes(container)) == {"livenessProbe"}
    path = container["livenessProbe"]["httpGet"]["path"]
    port = free_port()
    env = _env({"SHARPEN_REDIS_URL": redis_url})  # the worker needs no API keys
    log = tmp_path / "worker.log"
    ports = {"SHARPEN_WORKER_METRICS_PORT": port}
    with run_container(container["args"], env, log=log, ports=ports) as process:
        metrics = answers(f"http://127.0.0.1:{port}{path}", process, log)
        assert "sharpen_monitor_runs_total" in metrics.text


def test_shipped_secret_values_refuse_to_start_naming_the_setting() -> None:
    assert set(SECRET.values()) == {""}, "the shipped Secret holds no usable value"
    for deployment in (API, WORKER):
        said = refusal(_container(deployment)["args"], _env({}))
        assert "SHARPEN_REDIS_URL" in said, said
    # With a Redis URL but the keys still empty, the API names the keys.
    said = refusal(_container(API)["args"], _env({"SHARPEN_REDIS_URL": "redis://redis:6379/0"}))
    assert "SHARPEN_ADMIN_KEYS" in said and "SHARPEN_CLIENT_KEYS" in said, said
