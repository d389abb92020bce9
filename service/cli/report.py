"""``sharpen report KEY``: the results of an experiment for people.

The rendering is pure (a results document in, a renderable or a string out), so the
demo, the dashboard or a notebook can reuse it without the HTTP side:

* :func:`render_report` -> a rich renderable for the terminal;
* :func:`markdown_report` -> Markdown to paste into a review.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer
from rich.console import Console

from service.cli._http import AdminAPI
from service.cli._report_md import markdown_report
from service.cli._report_rich import render_report

__all__ = ["markdown_report", "render_report", "report", "report_console"]

_WIDE = 160


def report_console() -> Console:
    """A console on stdout; piped (no terminal, no COLUMNS) it is wide enough for the tables."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=_WIDE)
    return console


def report(
    key: str = typer.Argument(..., help="Experiment key"),
    url: str = typer.Option(
        None, "--url", help="Service URL [SHARPEN_URL, default http://127.0.0.1:8000]"
    ),
    api_key: str = typer.Option(None, "--api-key", help="Admin key [SHARPEN_API_KEY, else dev]"),
    as_json: bool = typer.Option(False, "--json", help="Print the results document as JSON"),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown for a review"),
    overall: bool = typer.Option(
        False, "--overall", help="Whole-population rows only (no segment breakdown)"
    ),
) -> None:
    """Results of an experiment: metrics, guardrails, SRM, decision and progress."""
    if as_json and markdown:
        raise typer.BadParameter("--json and --markdown are exclusive")
    with AdminAPI(url, api_key) as api:
        results: dict[str, Any] = api.request("GET", f"/v1/experiments/{key}/results")
    if as_json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    elif markdown:
        sys.stdout.write(markdown_report(results, segments=not overall))
    else:
        report_console().print(render_report(results, segments=not overall))
