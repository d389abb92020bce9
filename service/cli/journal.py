"""``sharpen journal``: ended experiments, their findings, and what lines and levers add up to."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from service.cli._http import AdminAPI
from service.cli.experiments import KeyOpt, UrlOpt

__all__ = ["journal"]

console = Console()


def _pct(x: Any) -> str:
    return f"{x:+.1%}" if isinstance(x, int | float) else "-"


def _interval(block: dict[str, Any] | None, fmt: Callable[[Any], str] = _pct) -> str:
    if not block or block.get("estimate") is None:
        return "-"
    lo, hi = block.get("ci") or (None, None)
    if lo is None or hi is None:
        return fmt(block["estimate"])
    return f"{fmt(block['estimate'])} [{fmt(lo)}, {fmt(hi)}]"


def _money(currency: str) -> Callable[[Any], str]:
    def fmt(x: Any) -> str:
        return f"{x:,.0f} {currency}" if isinstance(x, int | float) else "-"

    return fmt


def _day(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _entries_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(
        "ended", "experiment", "line", "lever", "outcome", "by", "primary lift", "yearly value",
        "why", title="journal (newest first)",
    )  # fmt: skip
    for e in entries:
        primary = e.get("primary") or {}
        value = e.get("value")
        table.add_row(
            _day(e.get("ended_at")),
            f"{e['experiment']} (v{e['spec_version']})",
            e["line"],
            e.get("lever") or "-",
            e["status"] + (f" {e['variant']}" if e["status"] == "shipped" else ""),
            e["actor"],
            f"{primary.get('metric', '')} {_interval(primary.get('relative'))}".strip() or "-",
            _interval(value["yearly"], _money(value["currency"])) if value else "-",
            "; ".join(e["decision"]["reasons"])[:80],
        )
    return table


def _lines_table(lines: list[dict[str, Any]]) -> Table:
    table = Table("line", "baseline now", "shipped / run", "cumulative lift", title="model lines")
    for line in lines:
        base = line.get("baseline")
        cumulative = ", ".join(
            f"{c['metric']} {_interval(c['lift'])} over {len(c['experiments'])}"
            for c in line["cumulative"]
        )
        table.add_row(
            line["line"],
            f"{base['variant']} of {base['experiment']}" if base else "-",
            f"{line['shipped']} / {line['experiments']}",
            cumulative or "-",
        )
    return table


def _levers_table(levers: list[dict[str, Any]]) -> Table:
    table = Table(
        "lever", "run", "shipped", "rolled back", "stopped", "win rate", "mean shipped lift",
        "yearly value", title="which levers paid off",
    )  # fmt: skip
    for lever in levers:
        values = ", ".join(
            _interval(v, _money(currency)) for currency, v in lever["yearly_value"].items()
        )
        table.add_row(
            lever["lever"],
            str(lever["experiments"]),
            str(lever["shipped"]),
            str(lever["rolled_back"]),
            str(lever["stopped"]),
            f"{lever['win_rate']:.0%}",
            _pct(lever["mean_shipped_lift"]),
            values or "-",
        )
    return table


def _backtests_table(backtests: list[dict[str, Any]]) -> Table:
    table = Table("at", "experiment", "candidate", "verdict", "why", title="backtests (history)")
    for b in backtests:
        verdict = b.get("verdict") or {}
        table.add_row(
            _day(b.get("at")),
            str(b.get("experiment", "-")),
            str(b.get("candidate", "-")),
            str(verdict.get("action", "-")),
            str(verdict.get("statement") or "; ".join(verdict.get("reasons") or []))[:100],
        )
    return table


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
        console.print(_entries_table(page["entries"]))
        if page["total"] > len(page["entries"]):
            console.print(f"({len(page['entries'])} of {page['total']} entries; --limit for more)")
    if "lines" in page:
        console.print(_lines_table(page["lines"]))
    if "levers" in page:
        console.print(_levers_table(page["levers"]))
    if page.get("backtests"):
        console.print(_backtests_table(page["backtests"]))
