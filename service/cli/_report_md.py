"""The results document as Markdown, to paste into a review (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.cli import _report_text as words

__all__ = ["markdown_report"]


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def markdown_report(results: Mapping[str, Any], *, segments: bool = True) -> str:
    """The results of one experiment as GitHub-flavoured Markdown.

    Same content as :func:`render_report`: decision and reasons, progress, SRM, then a
    metrics table and a guardrails table (breached and worse statuses in bold).
    """
    headline, reasons = words.decision_lines(results)
    lines = [f"## {words.title(results)}", "", f"**Decision: {headline}**"]
    lines += [f"- {_cell(r)}" for r in reasons]
    lines.append("")
    lines.append(f"- **Units:** {words.units_text(results)}")
    prog = words.progress(results)
    if prog.sentences:
        lines.append(f"- **Progress:** {'; '.join(prog.sentences)}")
    ok, srm = words.srm_text(results)
    lines.append(f"- **SRM:** {'' if ok is not False else '⚠ '}{srm}")
    lines += ["", "### Metrics", ""]
    metric_rows = words.metric_rows(results, segments=segments)
    if metric_rows:
        cells = []
        for row in metric_rows:
            c = words.metric_cells(row)
            if row.get("status") in ("better", "worse"):
                c[-1] = f"**{c[-1]}**"
            cells.append(c)
        lines += _table(words.METRIC_COLUMNS, cells)
    else:
        lines.append("_no metric rows yet_")
    lines += ["", "### Guardrails", ""]
    guardrail_rows = words.guardrail_rows(results, segments=segments)
    if guardrail_rows:
        cells = []
        for row in guardrail_rows:
            c = words.guardrail_cells(row)
            if row.get("status") in ("breached", "warning"):
                c[-1] = f"**{c[-1]}**"
            cells.append(c)
        lines += _table(words.GUARDRAIL_COLUMNS, cells)
    else:
        lines.append("_no guardrails_")
    lines.append("")
    return "\n".join(lines)
