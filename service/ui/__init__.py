"""The web dashboard, served under ``/ui`` by the same app (server-rendered, no build step).

Pages: experiments (list, one experiment with its plots and actions), plan, journal,
models and their error analysis, the model monitor's pages and the weekly review.
Sessions and CSRF: :mod:`service.ui._auth`. Plots:
:mod:`service.ui.plots` (pure functions producing SVG). Numbers come from the same
internal functions as the JSON API (:mod:`service.ui._sources`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from service.ui import (
    _pages_auth,
    _pages_experiments,
    _pages_journal,
    _pages_models,
    _pages_monitor,
    _pages_plan,
    _pages_rollout,
)
from service.ui._render import SECURITY_HEADERS, Templates
from service.ui._route import ui_route_class
from service.ui._sources import ServiceSources, Sources, get_sources

__all__ = ["ServiceSources", "Sources", "get_sources", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _static_files() -> dict[str, tuple[bytes, str]]:
    return {
        path.name: (path.read_bytes(), _STATIC_TYPES[path.suffix])
        for path in STATIC_DIR.iterdir()
        if path.suffix in _STATIC_TYPES
    }


def router() -> APIRouter:
    """The dashboard's routes (every page but login needs an admin session)."""
    templates = Templates()
    ui = APIRouter(prefix="/ui", route_class=ui_route_class(templates), include_in_schema=False)
    static = _static_files()

    @ui.get("", name="ui_root")
    async def root() -> Response:
        return RedirectResponse("/ui/", status_code=307, headers=SECURITY_HEADERS)

    @ui.get("/static/{name}", name="ui_static")
    async def static_file(name: str) -> Response:
        found = static.get(name)
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        body, media_type = found
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"}
        return Response(body, media_type=media_type, headers=headers)

    pages = (_pages_auth, _pages_rollout, _pages_experiments, _pages_plan, _pages_journal)
    for page in (*pages, _pages_models, _pages_monitor):
        page.register(ui, templates)
    return ui
