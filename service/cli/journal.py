"""``sharpen journal``: ended experiments, their findings, and what lines and levers add up to."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from service import format as fmt
from service.cli._http import AdminAPI
from service.cli.experiments import KeyOpt, UrlOpt

__all__ = ["journal"]

console = Console()


_interval = fmt.interval_of


def _money(currency: str) -> Callable[[Any], str]:
    return lambda x: fmt.money(x, currency)


def _entries(entries: list[dict[str, Any]]) -> Text:
    """One block per entry, wrapped rather than cut (it reads at 80 columns)."""
    out = Text()
    out.append("journal (newest first)\n", style="bold")
    for e in entries:
        ended = fmt.timestamp(e.get("ended_at"))
        outcome = e["status"] + (f" {e['variant']}" if e["status"] == "shipped" else "")
        out.append(f"\n{ended}  ", style="dim")
        out.append(f"{e['experiment']} (v{e['spec_version']})", style="bold")
        out.append(f"  {outcome} by {e['actor']}\n")
        out.append(f"  line {e['line']} · lever {e.get('lever') or fmt.MISSING}\n")
        primary = e.get("primary") or {}
        if primary:
            out.append(f"  {primary.get('metric', '')} {_interval(primary.get('relative'))}\n")
        out.append(f"  value: {fmt.journal_value(e)}\n")
        out.append(f"  why: {'; '.join(e['decision']['reasons'])}\n")
    return out


def _lines_table(lines: list[dict[str, Any]]) -> Table:
    table = Table("line", "baseline now", "shipped / run", "cumulative lift", title="model lines")
    for line in lines:
        base = line.get("baseline")
        cumulative = ", ".join(
            f"{c['metric']} {_interval(c['lift'])} over {fmt.plural(len(c['experiments']), 'run')}"
            for c in line["cumulative"]
        )
        table.add_row(
            line["line"],
            f"{base['variant']} of {base['experiment']}" if base else fmt.MISSING,
            f"{line['shipped']} / {line['experiments']}",
            cumulative or fmt.MISSING,
        )
    return table


def _levers_table(levers: list[dict[str, Any]]) -> Table:
    table = Table(
        "lever", "runs: shipped / rolled back / stopped", "win rate", "mean shipped lift",
        "yearly value", title="which levers paid off",
    )  # fmt: skip
    for lever in levers:
        values = ", ".join(
            _interval(v, _money(currency)) for currency, v in lever["yearly_value"].items()
        )
        table.add_row(
            lever["lever"],
            f"{lever['experiments']}: {lever['shipped']} / {lever['rolled_back']} / "
            f"{lever['stopped']}",
            fmt.pct(lever["win_rate"], sign=False, digits=0),
            fmt.pct(lever["mean_shipped_lift"]),
            values or fmt.MISSING,
        )
    return table


def _backtests(backtests: list[dict[str, Any]]) -> Text:
    out = Text()
    out.append("backtests (history)\n", style="bold")
    for b in backtests:
        verdict = b.get("verdict") or {}
        why = verdict.get("statement") or "; ".join(verdict.get("reasons") or [])
        out.append(f"\n{fmt.timestamp(b.get('at'))}  ", style="dim")
        out.append(f"{b.get('experiment', fmt.MISSING)}", style="bold")
        out.append(f"  {b.get('candidate', fmt.MISSING)}: {verdict.get('action', fmt.MISSING)}\n")
        if why:
            out.append(f"  why: {why}\n")
    return out


def journal(
    url: str = UrlOpt,
    api_key: str = KeyOpt,
    summary: str = typer.Option(None, help="Only a summary: levers or lines"),
    line: str = typer.Option(None, help="Only this model line"),
    lever: str = typer.Option(None, help="Only this lever (data, features, ...)"),
    status: str = typer.Option(None, help="Only shipped, rolled_back or stopped"),
    limit: int = typer.Option(50, help="At most this many entries"),
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON"),
) -> None:
    """The experiment journal: every ended experiment, model lines, levers."""
    params = {"summary": summary, "line": line, "lever": lever, "status": status}
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    path = f"/v1/journal?limit={limit}" + (f"&{query}" if query else "")
    with AdminAPI(url, api_key) as api:
        page: dict[str, Any] = api.request("GET", path)
    if as_json:
        console.print_json(json.dumps(page))
        return
    if "entries" in page:
        console.print(_entries(page["entries"]))
        if page["total"] > len(page["entries"]):
            console.print(f"({len(page['entries'])} of {page['total']} entries; --limit for more)")
    if "lines" in page:
        console.print(_lines_table(page["lines"]))
    if "levers" in page:
        console.print(_levers_table(page["levers"]))
    if page.get("backtests"):
        console.print(_backtests(page["backtests"]))
