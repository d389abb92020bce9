"""The first step of every HTTP request: one plain ASGI coroutine instead of a middleware chain.

For each request :class:`Front`

1. takes the request id (:class:`service.logs.RequestIds`): echoed in the answer, on every
   log line written while serving it;
2. resolves the caller once into ``scope["auth"]`` (:class:`service.auth.Authenticate`:
   400 for ambiguous credentials, 429 + ``Retry-After`` over the failed-authentication
   limit);
3. answers ``POST /v1/assign`` and ``/v1/assign/batch`` itself (the checks of
   :mod:`service.api.assign`, then the assigner), with no send wrapper and no FastAPI
   machinery: the assignment hot path; hands every other request
   to the FastAPI app (its error handling, body limits, admin rate limit, routes);
4. records the request in the per-worker table (:mod:`service.api.request_table`) and,
   with ``SHARPEN_ACCESS_LOG``, writes an access line.

:class:`service.app.SharpenApp` sends every HTTP request here first.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.assign import (
    ASSIGN_BATCH_PATH,
    ASSIGN_PATH,
    INTERNAL_ERROR,
    admit_assign,
    read_rest,
    too_large,
)
from service.api.request_table import RequestTable
from service.assignment import Assigner
from service.auth import Authenticate
from service.errors import SharpenServiceError
from service.logs import REQUEST_ID_HEADER, RequestIds, log_access

__all__ = ["Front"]

_ID_HEADER: Final = REQUEST_ID_HEADER.lower().encode()
_JSON: Final = (b"content-type", b"application/json")
_NO_HEADERS: Final[dict[str, str]] = {}

log = logging.getLogger("sharpen.api")


class Front:
    """See the module docstring. ``app`` serves what is not answered here. The app's lifespan
    sets :attr:`assigner` once assignment runs (until then FastAPI's routes answer)."""

    assigner: Assigner | None = None

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        table: RequestTable,
        max_body_bytes: int,
        access_log: bool,
    ) -> None:
        self.app = app
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
            assigner = self.assigner
            if (
                (path == ASSIGN_PATH or path == ASSIGN_BATCH_PATH)
                and scope["method"] == "POST"
                and assigner is not None
            ):
                route = path
                status = await self._assign(assigner, scope, receive, send, raw_id)
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

    async def _assign(
        self, assigner: Assigner, scope: Scope, receive: Receive, send: Send, raw_id: bytes
    ) -> int:
        """Answer ``POST /v1/assign`` or ``/v1/assign/batch``; the status (500: the client
        went away before sending its body)."""
        limit = self.max_body_bytes
        extra = _NO_HEADERS
        try:
            admit_assign(scope, limit)
            message = await receive()
            if message["type"] != "http.request":
                return 500
            body = message.get("body", b"")
            if message.get("more_body", False):
                body = await read_rest(receive, body, limit)
                if body is None:
                    return 500
            elif len(body) > limit:
                raise too_large(limit)
            if scope["path"] == ASSIGN_PATH:
                status, content = 200, assigner.assign(body)
            else:
                status, content = 200, assigner.assign_batch(body)
        except SharpenServiceError as exc:
            status, content, extra = exc.status, orjson.dumps(exc.body()), exc.headers
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            status, content = 500, INTERNAL_ERROR
        await _answer(send, status, content, extra, raw_id)
        return status


async def _answer(
    send: Send, status: int, body: bytes, extra: dict[str, str], raw_id: bytes
) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body)), (_ID_HEADER, raw_id)]
    for name, value in extra.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
