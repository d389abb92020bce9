"""Admin commands over the HTTP API: apply, list, get, and the lifecycle actions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from service import format as fmt
from service.cli._http import AdminAPI, fail
from service.cli.rollout import rollout_lines, rollout_table

__all__ = ["apply", "get", "lifecycle", "list_experiments"]

console = Console()

UrlOpt = typer.Option(
    None, "--url", help="Service URL [SHARPEN_URL, default http://127.0.0.1:8000]"
)
KeyOpt = typer.Option(None, "--api-key", help="Admin key [SHARPEN_API_KEY, else dev keys]")


def spec_lines(spec: Mapping[str, Any]) -> list[str]:
    """The spec's settings in words: hypothesis, traffic, targeting, layer, segments,
    analysis, impact, guardrail policy, webhooks (what the tables below do not show)."""
    lines = []
    for name in ("description", "hypothesis", "lever"):
        if spec.get(name):
            lines.append(f"{name}: {spec[name]}")
    traffic = f"traffic: {fmt.share(spec.get('traffic'))} of eligible {spec.get('unit', 'user')}s"
    if fmt.as_float(spec.get("holdout")):
        traffic += f", global holdout {fmt.share(spec.get('holdout'))}"
    lines.append(traffic)
    targeting = spec.get("targeting") or {}
    lines.append(
        "targeting: "
        + (
            "; ".join(f"{k} in {', '.join(map(str, v))}" for k, v in targeting.items())
            if targeting
            else "everyone"
        )
    )
    if spec.get("layer"):
        lines.append(f"layer: {spec['layer']} ({fmt.share(spec.get('layer_share'))} of it)")
    else:
        lines.append("layer: none (may overlap other experiments)")
    segments = [s if isinstance(s, str) else fmt.readable(s) for s in spec.get("segments") or []]
    lines.append(f"segments: {', '.join(segments) if segments else fmt.MISSING}")
    analysis = spec.get("analysis") or {}
    if analysis:
        lines.append(f"analysis: {fmt.readable(analysis)}")
    if spec.get("impact"):
        lines.append(f"impact: {fmt.readable(spec['impact'])}")
    if spec.get("guardrails"):
        lines.append(f"guardrail policy: {fmt.readable(spec['guardrails'])}")
    if spec.get("webhooks"):
        lines.append(f"webhooks: {', '.join(spec['webhooks'])}")
    return lines


def apply(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Spec file (YAML or JSON)"),
    url: str = UrlOpt,
    api_key: str = KeyOpt,
) -> None:
    """Create a draft from a spec file, or update the draft with the same key."""
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        fail(f"{path} is not valid YAML: {exc}")
    if not isinstance(spec, dict) or "key" not in spec:
        fail(f"{path} must hold a mapping with a `key`")
    with AdminAPI(url, api_key) as api:
        existing = [e["key"] for e in api.request("GET", "/v1/experiments")["experiments"]]
        if spec["key"] in existing:
            record = api.request("PUT", f"/v1/experiments/{spec['key']}", spec)
            verb = "updated"
        else:
            record = api.request("POST", "/v1/experiments", spec)
            verb = "created"
    console.print(
        f"{verb} [bold]{record['key']}[/] (status {record['status']}, version {record['version']})"
    )


def list_experiments(url: str = UrlOpt, api_key: str = KeyOpt) -> None:
    """List experiments."""
    with AdminAPI(url, api_key) as api:
        records = api.request("GET", "/v1/experiments")["experiments"]
    table = Table("key", "status", "version", "variants", "started", title="experiments")
    for r in records:
        table.add_row(
            r["key"],
            r["status"],
            str(r["version"]),
            ", ".join(v["key"] for v in r["spec"]["variants"]),
            fmt.timestamp(r["started_at"]),
        )
    console.print(table)


def get(
    key: str = typer.Argument(..., help="Experiment key"),
    url: str = UrlOpt,
    api_key: str = KeyOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON"),
) -> None:
    """Show one experiment: the whole spec (variants, traffic, targeting, layer, segments,
    criteria), status, version, its rollout's step and what the ramp waits for, and the
    audit log."""
    with AdminAPI(url, api_key) as api:
        record: dict[str, Any] = api.request("GET", f"/v1/experiments/{key}")
        ramped = bool(record["spec"].get("rollout")) and record["status"] != "draft"
        results = api.request("GET", f"/v1/experiments/{key}/results") if ramped else {}
    if as_json:
        console.print_json(json.dumps(record))
        return
    spec = record["spec"]
    console.print(
        f"[bold]{record['key']}[/]  status [bold]{record['status']}[/]  version {record['version']}"
    )
    for line in spec_lines(spec):
        console.print(line, highlight=False)
    if record.get("shipped_variant"):
        console.print(f"shipped: {record['shipped_variant']}")
    variants = Table("variant", "weight", "share", "payload", title="variants")
    total = sum(fmt.as_float(v.get("weight")) or 0.0 for v in spec["variants"])
    for v in spec["variants"]:
        weight = fmt.as_float(v.get("weight")) or 0.0
        name = v["key"] + (" (baseline)" if v["key"] == spec.get("baseline") else "")
        variants.add_row(
            name,
            fmt.number(weight),
            fmt.share(weight / total if total else None),
            fmt.readable(v.get("payload")) if v.get("payload") else fmt.MISSING,
        )
    console.print(variants)
    metrics = Table("metric", "kind", "role", "direction", "mde / margin", title="success criteria")
    for m in spec["metrics"]:
        bound = m.get("mde") if m["role"] == "primary" else m.get("margin")
        metrics.add_row(m["name"], m["kind"], m["role"], m["direction"], fmt.pct(bound, sign=False))
    console.print(metrics)
    if spec.get("rollout"):
        section = results.get("rollout") or {
            "steps": len(spec["rollout"]["steps"]),
            "auto_advance": spec["rollout"].get("auto_advance"),
        }
        console.print("\n".join(rollout_lines(record["key"], section)))
        if section.get("schedule"):
            console.print(rollout_table(section))
    audit = Table("when", "who", "action", "version", "detail", title="audit")
    for entry in record["audit"]:
        audit.add_row(
            fmt.timestamp(entry["at"]),
            entry["actor"],
            entry["action"],
            str(entry["version"]),
            fmt.readable(entry["detail"]) if entry["detail"] else "",
        )
    console.print(audit)


def lifecycle(action: str) -> Any:
    def command(
        key: str = typer.Argument(..., help="Experiment key"),
        url: str = UrlOpt,
        api_key: str = KeyOpt,
        reason: str = typer.Option(None, help="Why (kept in the audit log)"),
        variant: str = typer.Option(None, help="ship only: the variant to ship"),
    ) -> None:
        body: dict[str, Any] = {}
        if reason:
            body["reason"] = reason
        if variant:
            body["variant"] = variant
        with AdminAPI(url, api_key) as api:
            record = api.request("POST", f"/v1/experiments/{key}/{action}", body or None)
        console.print(f"{record['key']}: {record['status']}")

    command.__doc__ = f"Lifecycle: {action} an experiment."
    return command
