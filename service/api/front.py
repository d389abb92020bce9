"""The first step of every HTTP request: one plain ASGI coroutine instead of a middleware chain.

For each request :class:`Front`

1. takes the request id (:class:`service.logs.RequestIds`): echoed in the answer, on every
   log line written while serving it;
2. resolves the caller once into ``scope["auth"]`` (:class:`service.auth.Authenticate`:
   400 for ambiguous credentials, 429 + ``Retry-After`` over the failed-authentication
   limit);
3. answers ``POST /v1/assign`` and ``/v1/assign/batch`` itself
   (:func:`service.api.assign.answer_assign`), with no send wrapper and no FastAPI
   machinery: the assignment hot path; hands every other request
   to the FastAPI app (its error handling, body limits, admin rate limit, routes);
4. records the request in the per-worker table (:mod:`service.api.request_metrics`) and,
   with ``SHARPEN_ACCESS_LOG``, writes an access line.

:class:`service.app.SharpenApp` sends every HTTP request here first.
"""

from __future__ import annotations

from time import perf_counter
from typing import Final

import orjson
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.assign import ASSIGN_BATCH_PATH, ASSIGN_PATH, answer_assign
from service.api.request_metrics import RequestTable
from service.auth import Authenticate
from service.errors import SharpenServiceError
from service.logs import REQUEST_ID_HEADER, RequestIds, log_access

__all__ = ["Front"]

_ID_HEADER: Final = REQUEST_ID_HEADER.lower().encode()
_JSON: Final = (b"content-type", b"application/json")


class Front:
    """See the module docstring. ``app`` serves what is not answered here; ``state`` is the
    app's state, where the lifespan puts the runtime (and with it the assigner)."""

    def __init__(
        self,
        app: ASGIApp,
        state: State,
        *,
        authenticate: Authenticate,
        table: RequestTable,
        max_body_bytes: int,
        access_log: bool,
    ) -> None:
        self.app = app
        self.state = state
        self.authenticate = authenticate
        self.table = table
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = perf_counter()
        request_id = self.ids.of(scope["headers"])
        raw_id = request_id.encode()
        token = RequestIds.bind(request_id)
        status = 500  # unless an answer starts: an exception, or the client went away
        route = None
        try:
            try:
                scope["auth"] = self.authenticate.resolve(scope)
            except SharpenServiceError as exc:
                status = exc.status
                await _answer(send, status, orjson.dumps(exc.body()), exc.headers, raw_id)
                return
            path = scope["path"]
            if (path == ASSIGN_PATH or path == ASSIGN_BATCH_PATH) and scope["method"] == "POST":
                runtime = getattr(self.state, "runtime", None)
                assigner = None if runtime is None else runtime.assigner
                if assigner is not None:
                    route = path
                    answer = await answer_assign(
                        assigner, scope, receive, self.max_body_bytes, batch=path != ASSIGN_PATH
                    )
                    if answer is not None:
                        status = answer[0]
                        await _answer(send, status, answer[1], answer[2], raw_id)
                    return

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), (_ID_HEADER, raw_id)]
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            seconds = perf_counter() - start
            self.table.record(route or self.table.route(scope), scope["method"], status, seconds)
            if self.access_log:
                log_access(scope["method"], scope["path"], status, seconds)
            RequestIds.unbind(token)


async def _answer(
    send: Send, status: int, body: bytes, extra: dict[str, str], raw_id: bytes
) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body)), (_ID_HEADER, raw_id)]
    for name, value in extra.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
