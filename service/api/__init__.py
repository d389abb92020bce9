"""HTTP routes: validate, call the domain, respond."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    """Every router of the v1 API, in documentation order."""
    from service.api import assign, config, experiments, exposures, health

    return [experiments.router, assign.router, exposures.router, config.router, health.router]
