"""The service's exception hierarchy; each maps to one HTTP status and the JSON error shape.

SharpenServiceError
├── BadRequest              400
├── Unauthorized            401
├── Forbidden               403
├── NotFound                404
├── Conflict                409
├── Gone                    410  (an ended experiment's statistics were deleted)
├── PayloadTooLarge         413
├── ValidationFailed        422  (details name every field at fault)
├── RateLimited             429
└── Unavailable             503  (Redis unreachable; carries Retry-After)
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from starlette.types import Send

__all__ = [
    "MAX_DETAILS",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "SharpenServiceError",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "error_body",
    "field_error",
    "send_error",
]

FieldError = dict[str, Any]

MAX_DETAILS = 100
"""At most this many ``details`` in an error body; ``details_total`` then says how many."""


def field_error(field: str, message: str, **extra: Any) -> FieldError:
    """One entry of ``error.details``: the dotted path of the field at fault and why."""
    return {"field": field, "message": message, **extra}


class SharpenServiceError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        details: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: list[FieldError]) -> dict[str, Any]:
    """The JSON error shape, with the first :data:`MAX_DETAILS` details and their total."""
    error: dict[str, Any] = {"code": code, "message": message, "details": details[:MAX_DETAILS]}
    if len(details) > MAX_DETAILS:
        error["details_total"] = len(details)
    return {"error": error}


class BadRequest(SharpenServiceError):
    status, code = 400, "bad_request"


class Unauthorized(SharpenServiceError):
    status, code = 401, "unauthorized"


class Forbidden(SharpenServiceError):
    status, code = 403, "forbidden"


class NotFound(SharpenServiceError):
    status, code = 404, "not_found"


class Conflict(SharpenServiceError):
    status, code = 409, "conflict"


class Gone(SharpenServiceError):
    status, code = 410, "gone"


class PayloadTooLarge(SharpenServiceError):
    status, code = 413, "payload_too_large"


class ValidationFailed(SharpenServiceError):
    status, code = 422, "validation_failed"


class RateLimited(SharpenServiceError):
    status, code = 429, "rate_limited"


class Unavailable(SharpenServiceError):
    status, code = 503, "unavailable"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


async def send_error(send: Send, exc: SharpenServiceError) -> None:
    """Answer with ``exc`` in the JSON error shape from a pure ASGI middleware."""
    body = orjson.dumps(exc.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()
    )
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
