"""Turn every failure into the JSON error shape; never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.responses import JSON
from service.errors import (
    MAX_DETAILS,
    SharpenServiceError,
    Unavailable,
    error_body,
    field_error,
)
from service.spec.validation import field_message
from service.store.connection import (
    ClusterDownError,
    ReadOnlyError,
    RedisConnectionError,
    RedisTimeoutError,
    TryAgainError,
)
from service.store.connection import ResponseError as RedisResponseError

__all__ = ["install_error_handlers"]

log = logging.getLogger("sharpen.api")

# Redis answers that mean "not now" rather than "wrong": a script running past its time
# limit (BUSY, which redis-py leaves a plain ResponseError), a failover or resharding.
_TRANSIENT_CLASSES = (ClusterDownError, ReadOnlyError, TryAgainError)
_TRANSIENT_PREFIXES = ("BUSY", "MASTERDOWN", "LOADING", "NOREPLICAS")


def _transient(exc: RedisResponseError) -> bool:
    return isinstance(exc, _TRANSIENT_CLASSES) or str(exc).startswith(_TRANSIENT_PREFIXES)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "unavailable",
}


def _field(loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(str(p) for p in parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SharpenServiceError)
    async def _service_error(_: Request, exc: SharpenServiceError) -> JSON:
        return JSON(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSON:
        errors = exc.errors()
        details = []
        body = getattr(request.scope.get("route"), "body_field", None)
        model = body.field_info.annotation if body is not None else None
        for err in errors[:MAX_DETAILS]:
            message = field_message(err, model)
            if err.get("type") == "json_invalid":
                message = "body is not valid JSON"
            details.append(field_error(_field(tuple(err.get("loc", ()))), message))
        body = error_body("validation_failed", "invalid request", details)
        if len(errors) > MAX_DETAILS:
            body["error"]["details_total"] = len(errors)
        return JSON(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSON:
        code = _STATUS_CODES.get(exc.status_code, "error")
        body = {"error": {"code": code, "message": str(exc.detail), "details": []}}
        return JSON(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis_down(_: Request, exc: Exception) -> JSON:
        log.warning("redis unavailable: %s", exc)
        err = Unavailable("storage is unavailable; retry later", retry_after_s=1)
        return JSON(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(RedisResponseError)
    async def _redis_refused(request: Request, exc: RedisResponseError) -> JSON:
        if not _transient(exc):
            return await _unexpected(request, exc)
        log.warning("redis cannot answer now: %s", str(exc)[:200])
        err = Unavailable("storage is busy; retry later", retry_after_s=1)
        return JSON(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSON:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": {"code": "internal", "message": "internal error", "details": []}}
        return JSON(body, status_code=500)
