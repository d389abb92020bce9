"""``sharpen demo``: the whole refinement loop on simulated traffic, in two minutes."""

from __future__ import annotations

import typer
from rich.console import Console

from service.demo.runner import run_demo
from service.demo.scenarios import SCENARIOS
from service.demo.server import DemoServer

__all__ = ["demo"]

console = Console()


def demo(
    url: str = typer.Option(None, help="A running sharpen; default: start a private one"),
    api_key: str = typer.Option(None, "--api-key", help="Admin key (with --url)"),
    client_key: str = typer.Option(None, "--client-key", help="Client key (with --url)"),
    scenario: str = typer.Option("regression", help="regression | win"),
    units: int = typer.Option(20_000, min=500, max=2_000_000, help="Simulated users"),
    seed: int = typer.Option(7, help="Seed of the simulated population"),
) -> None:
    """Run fraud model v7 against v6 on simulated traffic until the loop decides."""
    if scenario not in SCENARIOS:
        console.print(f"[red]error:[/] --scenario must be one of {sorted(SCENARIOS)}")
        raise typer.Exit(2)
    server: DemoServer | None = None
    if url is None:
        server = DemoServer()
        console.print("starting a private sharpen (embedded Redis, monitor every second)…")
        api_key, client_key = server.start()
        url = server.url
    elif not (api_key and client_key):
        console.print("[red]error:[/] --url needs --api-key (admin) and --client-key")
        raise typer.Exit(2)
    try:
        outcome = run_demo(
            url=url,
            admin_key=api_key,
            client_key=client_key,
            scenario=SCENARIOS[scenario],
            units=units,
            seed=seed,
            console=console,
        )
    finally:
        if server is not None:
            server.stop()
    for reason in outcome.reasons:
        console.print(f"  - {reason}")
    console.print(f"final status: {outcome.status}", markup=False, highlight=False)
