"""End to end with real processes: sharpen (API + aggregator + monitor) scraped by a real
Prometheus loaded with the shipped rules.

A candidate that improves overall but regresses recall in one country is rolled back by
the monitor; Prometheus fires GuardrailBreached for that segment alone; assignment serves
the baseline; the journal has the entry. An A/A experiment running alongside is left
alone: no breach, no rollback.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from service.embedded import free_port
from tests._factories import metric
from tests._factories import spec as experiment_spec
from tests._live import LiveServer
from tests._wait import GiveUp, log_tail, wait_for
from tests.conftest import ADMIN, CLIENT, ROOT, require_binary

RULES = ROOT / "deploy" / "prometheus" / "sharpen-rules.yml"

COUNTRIES = (("DE", 0.15), ("US", 0.45), ("FR", 0.40))
UNITS = 3000


class Prometheus:
    """A real Prometheus on a free port, scraping ``target`` every second with our rules
    (their ``for:`` shortened to one second)."""

    def __init__(self, binary: str, target: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = yaml.safe_load(RULES.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                rule["for"] = "1s"
        (workdir / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(workdir / "rules.yml")],
            "scrape_configs": [{"job_name": "sharpen", "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.args = [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._ready, what="Prometheus to start", explain=log_tail(self.log), timeout_s=90)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise GiveUp(f"prometheus exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=5).json()
        return list(body["data"]["alerts"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def spec(key: str) -> dict[str, Any]:
    return experiment_spec(
        key,
        models=("v1", "v2"),
        hypothesis="the new model scores better everywhere",
        lever="architecture",
        segments=["country"],
        metrics=[
            metric("score", "mean", role="primary", mde=0.05, baseline_mean=1.0, baseline_sd=0.2),
            metric("recall", "mean", role="guardrail", margin=0.02),
        ],
        analysis={"expected_daily_units": 3000, "min_days": 0},
        guardrails={"auto_rollback": True},
    )


def drive(client: httpx.Client, key: str, regress_in: str | None, seed: int) -> None:
    """Assign UNITS units, then send one event per unit (candidate effects by country)."""
    rng = random.Random(seed)
    units = []
    for i in range(UNITS):
        country = rng.choices([c for c, _ in COUNTRIES], [w for _, w in COUNTRIES])[0]
        units.append((f"{key}-u{i}", country))
    assigned: dict[str, str] = {}
    for start in range(0, UNITS, 1000):
        chunk = units[start : start + 1000]
        body = {
            "experiment": key,
            "units": [{"unit_id": u, "attributes": {"country": c}} for u, c in chunk],
        }
        answer = client.post("/v1/assign/batch", json=body, headers=CLIENT)
        assert answer.status_code == 200, answer.text
        for (unit, _), a in zip(chunk, answer.json()["assignments"], strict=True):
            assert a["in_experiment"], a
            assigned[unit] = a["variant"]
    rng.shuffle(units)
    events = []
    for unit, country in units:
        treated = assigned[unit] == "candidate"
        score = 1.0 * (1.1 if treated and regress_in is not None else 1.0)
        recall = 1.0
        if treated and regress_in is not None:
            recall = 0.75 if country == regress_in else 1.08
        events.append(
            {
                "event_id": f"{unit}-e",
                "experiment": key,
                "unit_id": unit,
                "variant": assigned[unit],
                "timestamp": time.time(),
                "values": {
                    "score": max(0.0, rng.gauss(score, 0.2)),
                    "recall": max(0.0, rng.gauss(recall, 0.1 * recall)),
                },
                "attributes": {"country": country},
            }
        )
    for start in range(0, len(events), 1000):
        sent = client.post(
            "/v1/events", json={"events": events[start : start + 1000]}, headers=CLIENT
        )
        assert sent.status_code == 202, sent.text


def samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def sharpen(server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        **server_env,
        "SHARPEN_RUN_WORKER": "true",
        "SHARPEN_MONITOR_INTERVAL_S": "0.5",
        "SHARPEN_AGGREGATOR_BLOCK_MS": "50",
    }
    server = LiveServer(env, log=tmp_path / "sharpen.log").start(timeout_s=90)
    yield server
    server.stop()


@pytest.mark.needs_prometheus
def test_segment_regression_pages_and_rolls_back_while_aa_stays(
    sharpen: LiveServer, tmp_path: Path
) -> None:
    binary = require_binary("prometheus", "prometheus")
    prometheus = Prometheus(binary, f"127.0.0.1:{sharpen.port}", tmp_path).start()
    log = sharpen.log_path
    try:
        with httpx.Client(base_url=sharpen.url, timeout=30) as client:
            for key in ("regress-v2", "aa-v1"):
                assert client.post("/v1/experiments", json=spec(key), headers=ADMIN).is_success
                assert client.post(f"/v1/experiments/{key}/start", headers=ADMIN).is_success
            drive(client, "regress-v2", regress_in="DE", seed=1)
            drive(client, "aa-v1", regress_in=None, seed=2)

            def status(key: str) -> str:
                return str(client.get(f"/v1/experiments/{key}", headers=ADMIN).json()["status"])

            wait_for(
                lambda: status("regress-v2"),
                until=lambda now: now == "rolled_back",
                what="the rollback",
                explain=log_tail(log),
                timeout_s=90,
                interval_s=0.25,
            )
            record = client.get("/v1/experiments/regress-v2", headers=ADMIN).json()
            rollback = record["audit"][-1]
            assert (rollback["action"], rollback["actor"]) == ("rollback", "monitor")
            assert rollback["detail"]["segment"] == {"country": "DE"}
            assert rollback["detail"]["metric"] == "recall"

            # Assignment now serves the baseline everywhere.
            def assigned_baseline() -> bool:
                answer = client.post(
                    "/v1/assign",
                    json={"experiment": "regress-v2", "unit_id": "regress-v2-u7",
                          "attributes": {"country": "US"}},
                    headers=CLIENT,
                ).json()  # fmt: skip
                return bool(answer["variant"] == "baseline" and not answer["in_experiment"])

            wait_for(
                assigned_baseline,
                what="assignment to serve the baseline",
                explain=log_tail(log),
                timeout_s=5,
            )

            # Prometheus pages for the regressing segment, and for nothing else.
            def breached() -> list[dict[str, Any]]:
                return [
                    a for a in prometheus.alerts()
                    if a["labels"]["alertname"] == "GuardrailBreached" and a["state"] == "firing"
                ]  # fmt: skip

            firing = wait_for(
                breached,
                what="GuardrailBreached to fire",
                explain=log_tail(prometheus.log),
                timeout_s=90,
                interval_s=0.25,
            )
            assert [
                (a["labels"]["experiment"], a["labels"]["metric"], a["labels"]["segment"])
                for a in firing
            ] == [("regress-v2", "recall", "country=DE")]
            alert = firing[0]
            assert alert["labels"]["severity"] == "page"
            assert "country=DE" in alert["annotations"]["description"]
            assert alert["annotations"]["runbook_url"].endswith("#guardrailbreached")

            entry = client.get("/v1/journal/regress-v2", headers=ADMIN).json()
            assert (entry["status"], entry["actor"]) == ("rolled_back", "monitor")
            assert "country=DE" in entry["decision"]["reasons"][0]
            assert entry["results"]["experiment"] == "regress-v2"

            # The A/A experiment: analysed with all its units, several times, untouched.
            def aa_analysed() -> float | None:
                seen = samples(client)
                units = sum(
                    v for (n, labels), v in seen.items()
                    if n == "sharpen_experiment_units" and ("experiment", "aa-v1") in labels
                )  # fmt: skip
                at = seen.get(
                    ("sharpen_last_analysis_timestamp_seconds", (("experiment", "aa-v1"),))
                )
                return at if units == UNITS else None

            first = wait_for(
                aa_analysed,
                what="the A/A experiment to be analysed",
                explain=log_tail(log),
                timeout_s=90,
                interval_s=0.25,
            )
            wait_for(
                lambda: aa_analysed() or 0,
                until=lambda at: at > (first or 0) + 1.5,
                what="more A/A passes",
                explain=log_tail(log),
                timeout_s=90,
                interval_s=0.25,
            )
            assert status("aa-v1") == "running"
            aa_statuses = [
                v for (n, labels), v in samples(client).items()
                if n == "sharpen_guardrail_status" and ("experiment", "aa-v1") in labels
            ]  # fmt: skip
            assert aa_statuses and max(aa_statuses) < 3
            assert not [a for a in prometheus.alerts() if a["labels"].get("experiment") == "aa-v1"
                        and a["labels"]["alertname"].startswith("Guardrail")]  # fmt: skip
            assert client.get("/v1/journal/aa-v1", headers=ADMIN).status_code == 404
    finally:
        prometheus.stop()
