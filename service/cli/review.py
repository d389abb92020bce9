"""``sharpen review``: the weekly review of the deployed models, for people or a channel."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.markdown import Markdown

from service.cli._http import AdminAPI
from service.cli.experiments import KeyOpt, UrlOpt

__all__ = ["review"]

console = Console()


def review(
    model: str = typer.Option(None, "--model", help="One model line only (default: all)"),
    since: str = typer.Option("7d", "--since", help="Period: 24h, 7d, 2w, ... (at most 120d)"),
    markdown: bool = typer.Option(False, "--markdown", help="Plain Markdown, for a channel"),
    as_json: bool = typer.Option(False, "--json", help="The review as JSON"),
    url: str = UrlOpt,
    api_key: str = KeyOpt,
) -> None:
    """Per model line: what changed since last week (degraded or recovered segments, input
    drift, label completeness), the error pattern to fix now, experiments running and
    ended with their journal decisions, cumulative improvement; lines ranked by value at
    stake (errors a week x impact.value_per_unit of the line's experiments)."""
    from service.modelwatch import review_markdown

    query = {"since": since, **({"model": model} if model else {})}
    with AdminAPI(url, api_key) as api:
        body = api.request("GET", f"/v1/review?{urlencode(query)}")
    if as_json:
        print(json.dumps(body, indent=2))
    elif markdown:
        print(review_markdown(body), end="")
    else:
        console.print(Markdown(review_markdown(body)))
