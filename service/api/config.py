"""``GET /v1/config`` (client scope): what the SDK needs to evaluate locally, with an ETag;
``GET /v1/config/stream``: the same document pushed on every change (server-sent events)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.deps import AssignerDep, ClientDep, RuntimeDep
from service.assignment import ConfigStreams, StreamTicket

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["assignment"])

_CONFIG_EXAMPLE = {
    "etag": "3f1c9a0b7e2d4c6a8b0e1f2a",
    "hash_version": 1,
    "experiments": {
        "fraud-v7": {
            "key": "fraud-v7",
            "version": 1,
            "status": "running",
            "salt": "fraud-v7",
            "hash_version": 1,
            "variants": [
                {"key": "baseline", "weight": 50, "payload": {"model": "fraud-v6"}},
                {"key": "candidate", "weight": 50, "payload": {"model": "fraud-v7"}},
            ],
            "baseline": "baseline",
            "shipped_variant": None,
            "traffic": 1.0,
            "targeting": {"country": ["US", "CA"]},
            "layer": None,
            "layer_range": None,
            "holdout": 0.0,
        }
    },
}


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison against a list of entity tags (or ``*``)."""
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == etag:
            return True
    return False


@router.get(
    "/config",
    summary="The SDK config: every running and ended experiment (no drafts)",
    response_model=None,
    responses={
        200: {
            "description": "The config document; `ETag` header set",
            "content": {"application/json": {"example": _CONFIG_EXAMPLE}},
        },
        304: {"description": "Unchanged since the `If-None-Match` ETag"},
        401: {"description": "Missing or unknown API key"},
        403: {"description": "Key lacks the client scope"},
        503: {"description": "Config not loaded yet"},
    },
)
async def get_config(request: Request, _: ClientDep, assigner: AssignerDep) -> Response:
    config = assigner.config()
    headers = {"ETag": f'"{config.etag}"', "Cache-Control": "no-cache"}
    condition = request.headers.get("if-none-match")
    if condition is not None and _matches(condition, config.etag):
        return Response(status_code=304, headers=headers)
    return Response(config.body, media_type="application/json", headers=headers)


@router.get(
    "/config/stream",
    summary="The SDK config pushed on every change (server-sent events)",
    response_model=None,
    responses={
        200: {
            "description": "`text/event-stream`: `event: config` (`id:` the ETag, `data:` the "
            "`GET /v1/config` body) on connect and on every change; `event: unchanged` when "
            "`Last-Event-ID` is still current; a `: ping` comment every heartbeat",
            "content": {"text/event-stream": {}},
        },
        401: {"description": "Missing or unknown API key"},
        403: {"description": "Key lacks the client scope"},
        429: {"description": "This key holds its streams on this worker; `Retry-After` set"},
        503: {"description": "Config not loaded, worker full or shutting down; `Retry-After`"},
    },
)
async def stream_config(
    request: Request, caller: ClientDep, assigner: AssignerDep, runtime: RuntimeDep
) -> Response:
    assigner.config()  # 503 until the first load, as GET /v1/config
    streams = runtime.extras.get("config_streams")
    if not isinstance(streams, ConfigStreams):
        raise RuntimeError(
            "config streams are not wired: add_assignment is not a component factory"
        )
    return EventStream(streams, streams.open(caller.name), request.headers.get("last-event-id"))


class EventStream(StreamingResponse):
    """The ``text/event-stream`` response of one ticket; releases it however it ends (also
    when the client leaves before the first byte)."""

    def __init__(self, streams: ConfigStreams, ticket: StreamTicket, last_event_id: str | None):
        super().__init__(
            streams.events(ticket, last_event_id),
            media_type="text/event-stream",
            # X-Accel-Buffering: a buffering proxy in front would hold the events back.
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._streams = streams
        self._ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._streams.release(self._ticket)
