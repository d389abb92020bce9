"""HTTP routes: validate, call the domain, respond."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    """Every router of the v1 API, in documentation order."""
    from service.api import (
        assign,
        backtest,
        config,
        events,
        experiments,
        exposition,
        exposures,
        health,
        journal,
        model_lines,
        model_monitor,
        results,
    )

    return [
        experiments.router,
        results.router,
        assign.router,
        exposures.router,
        events.router,
        config.router,
        model_lines.router,
        model_monitor.router,
        backtest.router,
        journal.router,
        exposition.router,
        health.router,
    ]
