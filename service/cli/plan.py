"""``sharpen plan spec.yaml``: the power analysis of a spec before launch, in words.

The numbers come from ``POST /v1/plan`` (the service's stats engine), so ``--json`` prints
exactly what ``GET /v1/experiments/{key}/plan`` answers for the same spec once stored.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from service import format as fmt
from service.cli._http import AdminAPI, fail
from service.cli.report import report_console
from service.spec.duration import format_duration

__all__ = ["plan", "plan_sentences", "render_plan"]

_DESIGNS = {
    "group_sequential": "group sequential",
    "fixed": "fixed horizon",
    "always_valid": "always valid",
}


def _ramp_step(step: Mapping[str, Any]) -> str:
    days = fmt.as_float(step.get("days")) or 0.0
    return f"{fmt.share(step.get('traffic'))} for {format_duration(round(days * 86_400))}"


def plan_sentences(plan: Mapping[str, Any], unit: str = "user") -> list[str]:
    """The plan in words: sample, duration, design cost and what it detects.

    e.g. ``needs 41,300 users per variant (82,600 in total): 5 days at 20,000/day;
    14 days minimum → 14 days``; with a rollout, the days through its ramp too
    (``…, 12 days through the ramp (1% for 10d, 5% for 6h, 20% for 1d, then 100%)``).
    """
    if plan.get("error"):
        return [f"cannot plan: {plan['error']}"]
    per_variant = fmt.as_float(plan.get("units_per_variant")) or 0.0
    total = fmt.as_float(plan.get("total_units")) or 0.0
    units = fmt.plural_noun(unit, per_variant)
    first = f"needs {fmt.count(per_variant)} {units} per variant ({fmt.count(total)} in total)"
    daily = fmt.as_float(plan.get("daily_units"))
    days = fmt.as_float(plan.get("days"))
    min_days = fmt.as_float(plan.get("min_days")) or 0.0
    ramp = [s for s in plan.get("rollout") or [] if isinstance(s, Mapping)]
    if daily and days is not None:
        traffic_days = math.ceil(total / daily)
        source = " observed" if plan.get("daily_units_source") == "observed" else ""
        first += f": {fmt.days(traffic_days)} at {fmt.count(daily)}/day{source}"
        if ramp:
            first += (
                f", {fmt.days(math.ceil(fmt.as_float(plan.get('ramp_days')) or 0))} through the "
            )
            first += "ramp (" + ", ".join(_ramp_step(s) for s in ramp[:-1])
            first += f", then {fmt.share(ramp[-1].get('traffic'))})"
        if min_days:
            first += f"; {fmt.days(min_days)} minimum"
        first += f" → {fmt.days(days)}"
    else:
        first += "; set analysis.expected_daily_units to know how many days"
    sentences = [first]
    design = str(plan.get("design", ""))
    fixed = fmt.as_float(plan.get("fixed_units_per_variant"))
    inflation = fmt.as_float(plan.get("inflation"))
    if design == "group_sequential" and fixed and inflation:
        sentences.append(
            f"group sequential with {fmt.plural(plan.get('looks'), 'look')}: "
            f"{fmt.pct(inflation - 1, sign=False)} more "
            f"{fmt.plural_noun(unit, 2)} than a fixed horizon ({fmt.count(fixed)} per variant), "
            "for the chance to stop early"
        )
    elif design == "always_valid" and fixed and inflation:
        sentences.append(
            f"always valid (decide any time): {fmt.pct(inflation - 1, sign=False)} more "
            f"{fmt.plural_noun(unit, 2)} "
            f"than a fixed horizon ({fmt.count(fixed)} per variant)"
        )
    elif design == "fixed":
        sentences.append("fixed horizon: one decision, at the planned sample")
    mde = fmt.as_float(plan.get("mde"))
    if mde is not None:
        alpha = fmt.as_float(plan.get("alpha"))
        power = fmt.as_float(plan.get("power"))
        sentences.append(
            f"to detect a {fmt.pct(mde, sign=False)} relative change in {plan.get('metric')} "
            f"({plan.get('kind')}, baseline {fmt.number(plan.get('baseline_mean'))}) "
            f"at alpha {fmt.number(alpha)}, power {fmt.pct(power, sign=False, digits=0)}"
            if alpha is not None and power is not None
            else f"to detect a {fmt.pct(mde, sign=False)} relative change in {plan.get('metric')}"
        )
    return sentences


def _curve(plan: Mapping[str, Any], unit: str) -> Table | None:
    curve = [row for row in plan.get("mde_curve") or [] if isinstance(row, Mapping)]
    if not curve:
        return None
    daily = fmt.as_float(plan.get("daily_units"))
    variants = fmt.as_float(plan.get("variants")) or 2.0
    table = Table(title="minimum detectable effect by duration", title_justify="left")
    table.add_column("days", justify="right")
    table.add_column(f"{fmt.plural_noun(unit, 2)} per variant", justify="right")
    table.add_column("MDE (relative)", justify="right")
    rows: list[tuple[float | None, float | None, object, str]] = []
    for row in curve:
        days = fmt.as_float(row.get("days"))
        per_variant = fmt.as_float(row.get("units_per_variant"))
        if per_variant is None:
            per_variant = daily * days / variants if daily and days else None
        rows.append((days, per_variant, row.get("mde"), ""))
    rows = _with_plan_row(rows, plan)
    for days, per_variant, mde, mark in rows:
        table.add_row(fmt.count(days), fmt.count(per_variant), fmt.pct(mde, sign=False) + mark)
    return table


def _with_plan_row(
    rows: list[tuple[float | None, float | None, object, str]], plan: Mapping[str, Any]
) -> list[tuple[float | None, float | None, object, str]]:
    """The curve with the plan's own row marked: the curve's row of the same sample, or the
    plan's sample (days of traffic, units, MDE) inserted in order when the curve has none."""
    planned = fmt.as_float(plan.get("units_per_variant"))
    if planned is None:
        return rows
    mark = "  ◀ plan"
    for i, (days, per_variant, mde, _) in enumerate(rows):
        if per_variant is not None and abs(per_variant - planned) <= 0.01 * planned:
            return [*rows[:i], (days, per_variant, mde, mark), *rows[i + 1 :]]
    daily = fmt.as_float(plan.get("daily_units"))
    total = fmt.as_float(plan.get("total_units"))
    days = math.ceil(total / daily) if daily and total else None
    own = (days, planned, plan.get("mde"), mark)
    at = next((i for i, r in enumerate(rows) if r[1] is not None and r[1] > planned), len(rows))
    return [*rows[:at], own, *rows[at:]]


def render_plan(plan: Mapping[str, Any], unit: str = "user") -> RenderableType:
    """The plan for the terminal: the sentences, then the MDE-vs-duration table."""
    sentences = plan_sentences(plan, unit)
    head = Text(f"plan for {plan.get('experiment', '?')}", style="bold")
    for i, sentence in enumerate(sentences):
        head.append(
            "\n" + sentence, style="bold red" if plan.get("error") else ("bold" if i == 0 else "")
        )
    parts: list[RenderableType] = [head]
    table = _curve(plan, unit)
    if table is not None:
        parts.append(table)
    return Group(*parts)


def _load_spec(path: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        fail(f"{path} is not valid YAML: {exc}")
    if not isinstance(spec, dict):
        fail(f"{path} must hold a mapping (an experiment spec)")
    return spec


def plan(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Spec file (YAML or JSON)"),
    url: str = typer.Option(
        None, "--url", help="Service URL [SHARPEN_URL, default http://127.0.0.1:8000]"
    ),
    api_key: str = typer.Option(None, "--api-key", help="Admin key [SHARPEN_API_KEY, else dev]"),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as the endpoint returns it"),
) -> None:
    """Power analysis before launch: units, days, and the MDE at other durations."""
    spec = _load_spec(path)
    with AdminAPI(url, api_key) as api:
        result: dict[str, Any] = api.request("POST", "/v1/plan", spec)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    unit = spec.get("unit")
    report_console().print(render_plan(result, unit if isinstance(unit, str) else "user"))
    if result.get("error"):
        raise typer.Exit(1)
