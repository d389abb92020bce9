"""Admin commands over the HTTP API: apply, list, get, and the lifecycle actions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from service.cli._http import AdminAPI, fail
from service.cli.rollout import rollout_lines, rollout_table

__all__ = ["apply", "get", "lifecycle", "list_experiments"]

console = Console()

UrlOpt = typer.Option(
    None, "--url", help="Service URL [SHARPEN_URL, default http://127.0.0.1:8000]"
)
KeyOpt = typer.Option(None, "--api-key", help="Admin key [SHARPEN_API_KEY, else dev keys]")


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
            _when(r["started_at"]),
        )
    console.print(table)


def get(
    key: str = typer.Argument(..., help="Experiment key"),
    url: str = UrlOpt,
    api_key: str = KeyOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON"),
) -> None:
    """Show one experiment: spec summary, status, version, its rollout's step and what the
    ramp waits for, and the audit log."""
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
    if spec.get("hypothesis"):
        console.print(f"hypothesis: {spec['hypothesis']}")
    if record.get("shipped_variant"):
        console.print(f"shipped: {record['shipped_variant']}")
    metrics = Table("metric", "kind", "role", "direction", "mde / margin", title="success criteria")
    for m in spec["metrics"]:
        bound = m.get("mde") if m["role"] == "primary" else m.get("margin")
        metrics.add_row(
            m["name"],
            m["kind"],
            m["role"],
            m["direction"],
            "-" if bound is None else f"{bound:.1%}",
        )
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
            _when(entry["at"]),
            entry["actor"],
            entry["action"],
            str(entry["version"]),
            json.dumps(entry["detail"]) if entry["detail"] else "",
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
