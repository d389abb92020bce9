"""A pure ASGI middleware that refuses request bodies over their route's size limit (413)."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        default: int,
        large: int,
        large_prefixes: tuple[str, ...],
        overrides: tuple[tuple[str, str, int], ...] = (),
    ):
        self.app = app
        self.default = default
        self.large = large
        self.large_prefixes = large_prefixes
        self.overrides = overrides
        """(prefix, suffix, limit): paths with both get their own limit."""

    def _limit(self, path: str) -> int:
        for prefix, suffix, limit in self.overrides:
            if path.startswith(prefix) and path.endswith(suffix):
                return limit
        return self.large if path.startswith(self.large_prefixes) else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _refuse(send, limit)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException survives FastAPI's body parsing and keeps its status.
                    raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body exceeds {limit} bytes",
                "details": [{"field": "body", "message": f"at most {limit} bytes"}],
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
