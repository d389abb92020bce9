"""The shipped Prometheus rules: valid (promtool check) and each alert unit-tested."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.conftest import ROOT, require_binary

RULES = ROOT / "deploy" / "prometheus" / "sharpen-rules.yml"
TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
ALERTS = {
    "GuardrailBreached": "page",
    "GuardrailWarning": "ticket",
    "SampleRatioMismatch": "ticket",
    "AnalysisStale": "page",
    "AggregationLagging": "ticket",
    "CandidateLatencyRegression": "ticket",
    "EventsRejected": "ticket",
    "RolloutHeld": "ticket",
    "SharpenModelSegmentDegraded": "page",
    "SharpenModelInputDrift": "ticket",
    "SharpenModelLabelsStale": "ticket",
    "SharpenModelMonitorStale": "ticket",
}


def _rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool", "prometheus")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_promtool_unit_tests() -> None:
    promtool = require_binary("promtool", "prometheus")
    assert TESTS, "no rule unit tests in deploy/prometheus/tests"
    done = subprocess.run(
        [promtool, "test", "rules", *map(str, TESTS)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout


def test_every_alert_is_unit_tested_with_a_firing_case() -> None:
    tested: set[str] = set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    assert tested == set(ALERTS)


def test_every_alert_has_for_severity_annotations_and_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in runbook.splitlines()
        if line.startswith("## ")
    }
    rules = {rule["alert"]: rule for rule in _rules()}
    assert set(rules) == set(ALERTS)
    for name, severity in ALERTS.items():
        rule = rules[name]
        assert rule.get("for"), name
        assert rule["labels"] == {"severity": severity}
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert annotations["runbook_url"].endswith(f"#{name.lower()}"), name
        assert name.lower() in anchors, f"docs/runbook.md has no section for {name}"
