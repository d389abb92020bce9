"""Drive simulated production traffic through the SDK and watch the loop decide."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import sharpen
from service import format as fmt
from service.demo.population import Population
from service.demo.scenarios import Scenario, demo_spec

__all__ = ["DemoOutcome", "run_demo"]

_CHUNK = 250


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    experiment: str
    status: str
    reasons: list[str]
    results: dict[str, Any]


def summary(results: dict[str, Any]) -> Table:
    """A compact live view: primary row, overall and worst guardrails, SRM, decision."""
    table = Table(title=f"{results['experiment']} — {results['status']}", expand=False)
    table.add_column("what")
    table.add_column("relative change [CI]")
    table.add_column("status")
    units = ", ".join(f"{k} {fmt.count(v)}" for k, v in results["units"].items())
    table.add_row("units", units, "")
    for row in results["metrics"]:
        if row["segment"] is None:
            table.add_row(
                f"{row['metric']} ({row['role']})",
                fmt.lift(row["relative"], percent=True, label="metric CI"),
                row["status"],
            )
    worst = sorted(
        results["guardrails"], key=lambda g: (g["status"] != "breached", g["segment"] is None)
    )
    for g in worst[:4]:
        where = "overall" if not g["segment"] else fmt.segment(g["segment"])
        style = "bold red" if g["status"] == "breached" else ""
        table.add_row(
            f"guardrail {g['metric']} {where}",
            fmt.lift(g["relative"], percent=True, label=f"guardrail {fmt.guardrail_confidence(g)}"),
            f"[{style}]{g['status']}[/]" if style else g["status"],
        )
    p_text, verdict = fmt.srm(results["srm"])
    table.add_row(
        "sample ratio", p_text, "[bold red]mismatch[/]" if verdict == "mismatch" else verdict
    )
    decision = results["decision"]
    table.add_row("decision", "; ".join(decision["reasons"][:2]), decision["action"])
    return table


def _fingerprint(results: dict[str, Any]) -> tuple[Any, ...]:
    """What changes while outcomes are still being counted."""
    rows = tuple(
        (r["metric"], r["baseline"]["units"], r["baseline"]["mean"], r["treatment"]["mean"])
        for r in results["metrics"]
        if r["segment"] is None
    )
    return (tuple(sorted(results["units"].items())), rows)


class _Admin:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()


def _unique_key(admin: _Admin, scenario: Scenario, seed: int) -> str:
    taken = {e["key"] for e in admin.call("GET", "/v1/experiments")["experiments"]}
    base = f"fraud-v7-{scenario.name}-s{seed}"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}-{n}"
    return key


def run_demo(
    *,
    url: str,
    admin_key: str,
    client_key: str,
    scenario: Scenario,
    units: int,
    seed: int,
    console: Console,
    settle_s: float = 60.0,
) -> DemoOutcome:
    admin = _Admin(url, admin_key)
    key = _unique_key(admin, scenario, seed)
    admin.call("POST", "/v1/experiments", demo_spec(key, scenario))
    admin.call("POST", f"/v1/experiments/{key}/start")
    console.print(f"[bold]{key}[/]: {scenario.story}. Expect: {scenario.expected}.")
    population = Population(seed)
    people = population.units(units)
    models = {"baseline": scenario.baseline, "candidate": scenario.candidate}
    events = 0
    started = time.monotonic()
    last_report = 0.0
    results: dict[str, Any] = {}
    with sharpen.Client(
        url, client_key, flush_interval=0.1, max_batch=2000, poll_interval=0.5
    ) as client:
        progress = Progress(
            TextColumn("[bold]traffic"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("units · {task.fields[rate]} events/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        with progress:
            task = progress.add_task("units", total=units, rate="0")
            for start in range(0, units, _CHUNK):
                for person in people[start : start + _CHUNK]:
                    assignment = client.assign(key, person.unit_id, person.attributes)
                    model = models.get(assignment.variant or "baseline", scenario.baseline)
                    outcomes = population.outcomes(person, model)
                    if not assignment.in_experiment:
                        continue  # served the baseline outside the experiment: not analysed
                    for values in outcomes:
                        client.track(
                            key,
                            person.unit_id,
                            values,
                            attributes=person.attributes,
                            variant=assignment.variant,
                        )
                        events += 1
                elapsed = max(time.monotonic() - started, 1e-9)
                progress.update(
                    task, advance=min(_CHUNK, units - start), rate=f"{events / elapsed:,.0f}"
                )
                if time.monotonic() - last_report > 2.0:
                    last_report = time.monotonic()
                    results = admin.call("GET", f"/v1/experiments/{key}/results")
                    if results["status"] != "running":
                        break
            client.flush(timeout=30)
    # Let the aggregator count the tail and the monitor act on it. Units are counted from
    # exposures, which arrive before the outcomes: act only once the numbers stop moving.
    deadline = time.monotonic() + settle_s
    previous: tuple[Any, ...] | None = None
    while True:
        results = admin.call("GET", f"/v1/experiments/{key}/results")
        action = results["decision"]["action"]
        if results["status"] != "running":
            break
        current = _fingerprint(results)
        settled = current == previous and sum(results["units"].values()) >= units * 0.99
        previous = current
        if settled and action in ("ship", "stop"):
            admin.call(
                "POST",
                f"/v1/experiments/{key}/{action}",
                {"reason": "; ".join(results["decision"]["reasons"])},
            )
            results = admin.call("GET", f"/v1/experiments/{key}/results")
            break
        if time.monotonic() > deadline:
            if action == "rollback":
                # No monitor acted (e.g. --url names a server without a worker): do as the
                # spec's auto_rollback says.
                admin.call(
                    "POST",
                    f"/v1/experiments/{key}/rollback",
                    {"reason": "; ".join(results["decision"]["reasons"])},
                )
                results = admin.call("GET", f"/v1/experiments/{key}/results")
            break
        time.sleep(1.0)
    console.print(summary(results))
    record = admin.call("GET", f"/v1/experiments/{key}")
    last = record["audit"][-1]
    reasons = [str(last.get("detail", {}).get("reason", ""))] if last["action"] != "start" else []
    return DemoOutcome(
        experiment=key,
        status=record["status"],
        reasons=[r for r in reasons if r] or results["decision"]["reasons"],
        results=results,
    )
