"""The smallest useful ASGI app: reads the request body and answers a fixed JSON object.

The yardstick for ``bench_assign``: served by the same uvicorn, with the same options,
it measures what the HTTP server and the load generator cost on their own.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

__all__ = ["app"]

_BODY = (
    b'{"experiment":"bench","variant":"candidate","payload":{"model":"v7"},'
    b'"in_experiment":true,"reason":"assigned"}'
)
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
