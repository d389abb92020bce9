"""The shipped Grafana dashboard: valid JSON, valid PromQL, only metrics sharpen exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from service.metrics import Metrics
from tests.conftest import ROOT, require_binary

DASHBOARD = ROOT / "deploy" / "grafana" / "sharpen-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "sharpen-rules.yml"
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    return [e.replace("$experiment", "fraud-v7").replace("$metric", "recall") for e in exprs]


def _exported() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    # Families of the experiment collector (empty without experiments): read their names.
    source = (ROOT / "service" / "metrics.py").read_text()
    names.update(re.findall(r'f"\{NAMESPACE\}_(\w+)"', source))
    return {n if n.startswith("sharpen_") else f"sharpen_{n}" for n in names}


def _used(expr: str) -> set[str]:
    return set(re.findall(r"\bsharpen_\w+", expr))


def test_dashboard_has_guardrail_and_service_panels() -> None:
    board = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in board["panels"]]
    assert "Guardrails by segment" in titles
    assert any("Requests per second" in t for t in titles)
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "experiment", "metric"} <= variables
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_and_rules_use_only_exported_metrics() -> None:
    exported = _exported()
    counters = {n.removesuffix("_total") for n in exported if n.endswith("_total")}
    rules = yaml.safe_load(RULES.read_text())
    exprs = _queries() + [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for expr in exprs:
        for name in _used(expr):
            base = name
            for suffix in _SUFFIXES:
                base = base.removesuffix(suffix)
            assert name in exported or base in exported or base in counters, (name, expr)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
