"""The dashboard's route class: HTML error pages, login redirects and security headers.

The JSON API's handlers answer errors with JSON; a browser on ``/ui`` gets a page
instead, and a missing session becomes a redirect to the login form.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from service.errors import SharpenServiceError
from service.store.connection import RedisConnectionError, RedisTimeoutError
from service.ui._auth import LoginRequired, login_url
from service.ui._render import SECURITY_HEADERS, Templates

__all__ = ["ui_route_class"]

log = logging.getLogger("sharpen.ui")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


def ui_route_class(templates: Templates) -> type[APIRoute]:
    def error_page(
        request: Request,
        status: int,
        message: str,
        details: list[dict[str, object]],
        headers: dict[str, str] | None = None,
    ) -> Response:
        return templates.render(
            request,
            "error.html",
            {"status": status, "message": message, "details": details, "session": None},
            status_code=status,
            headers=headers,
        )

    class UIRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    response = await handler(request)
                except LoginRequired:
                    target = login_url(request) if request.method == "GET" else "/ui/login"
                    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
                except SharpenServiceError as exc:
                    return error_page(request, exc.status, exc.message, exc.details, exc.headers)
                except RequestValidationError as exc:
                    details: list[dict[str, object]] = [
                        {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg"))}
                        for e in exc.errors()
                    ]
                    return error_page(request, 422, "invalid request", details)
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    log.warning("redis unavailable: %s", exc)
                    return error_page(
                        request,
                        503,
                        "storage is unavailable; retry later",
                        [],
                        {"Retry-After": "1"},
                    )
                for name, value in SECURITY_HEADERS.items():
                    response.headers.setdefault(name, value)
                return response

            return guarded

    return UIRoute
