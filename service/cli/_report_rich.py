"""The results document as a rich renderable for the terminal (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from service.cli import _report_text as words

__all__ = ["render_report"]

_METRIC_STYLES = {"better": "bold green", "worse": "bold red", "inconclusive": "yellow"}
_GUARDRAIL_STYLES = {
    "ok": "green",
    "inconclusive": "dim",
    "warning": "bold yellow",
    "breached": "bold red",
}
_DECISION_STYLES = {
    "ship": "bold green",
    "rollback": "bold red",
    "continue": "bold yellow",
    "stop": "bold magenta",
}
_BAR_WIDTH = 30


def _bar(share: float) -> Text:
    filled = round(min(max(share, 0.0), 1.0) * _BAR_WIDTH)
    bar = Text("█" * filled, style="cyan")
    bar.append("░" * (_BAR_WIDTH - filled), style="dim")
    return bar


def _status(value: str, styles: Mapping[str, str]) -> Text:
    return Text(value, style=styles.get(value.split(" ")[0], ""))


def _metrics_table(results: Mapping[str, Any], segments: bool) -> Table | Text:
    rows = words.metric_rows(results, segments=segments)
    if not rows:
        return Text("no metric rows yet", style="dim")
    table = Table(title="metrics", title_justify="left", show_lines=False, expand=False)
    for column in words.METRIC_COLUMNS:
        numeric = column not in ("metric", "role", "variant", "segment", "status")
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=not numeric, overflow="fold"
        )
    for row in rows:
        cells = words.metric_cells(row)
        table.add_row(
            *cells[:-1],
            _status(cells[-1], _METRIC_STYLES),
            style="bold" if row.get("role") == "primary" and not row.get("segment") else None,
        )
    return table


def _guardrails_table(results: Mapping[str, Any], segments: bool) -> Table | Text:
    rows = words.guardrail_rows(results, segments=segments)
    if not rows:
        return Text("no guardrails", style="dim")
    table = Table(title="guardrails", title_justify="left")
    for column in words.GUARDRAIL_COLUMNS:
        numeric = column in ("margin", "rel. change [CI]", "p")
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=not numeric, overflow="fold"
        )
    for row in rows:
        cells = words.guardrail_cells(row)
        breached = row.get("status") == "breached"
        table.add_row(
            *cells[:-1], _status(cells[-1], _GUARDRAIL_STYLES), style="red" if breached else None
        )
    return table


def _decision(results: Mapping[str, Any]) -> Panel:
    headline, reasons = words.decision_lines(results)
    action = headline.split(" ")[0]
    body = Text("decision: ")
    body.append(action.upper() or "?", style=_DECISION_STYLES.get(action, "bold"))
    body.append(headline[len(action) :])
    for reason in reasons:
        body.append(f"\n  • {reason}")
    return Panel(body, border_style=_DECISION_STYLES.get(action, "white").split(" ")[-1])


def render_report(results: Mapping[str, Any], *, segments: bool = True) -> RenderableType:
    """The results of one experiment for the terminal.

    A header (status, units, progress against the plan, SRM), the metrics table (every
    metric x variant x segment: means, absolute and relative lift with their CIs,
    p-value, status), the guardrails table (breached rows in red) and the decision with
    its reasons. ``segments=False`` keeps only the whole-population rows.
    """
    header = Text(words.title(results), style="bold")
    header.append(f"\nunits: {words.units_text(results)}", style="")
    prog = words.progress(results)
    if prog.sentences:
        header.append("\nprogress: ")
        if prog.share is not None:
            header.append_text(_bar(prog.share))
            header.append(" ")
        header.append("; ".join(prog.sentences))
    ok, srm = words.srm_text(results)
    header.append("\nSRM: ")
    header.append(
        ("✓ " if ok else "✗ ") + srm if ok is not None else srm,
        style="green" if ok else ("bold red" if ok is False else "dim"),
    )
    return Group(
        Panel(header, title="sharpen report", title_align="left"),
        _metrics_table(results, segments),
        _guardrails_table(results, segments),
        _decision(results),
    )
