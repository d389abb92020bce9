"""An in-memory stand-in for the service's client endpoints, behind httpx.MockTransport."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

API_KEY = "test-client-key"


def entry(key: str = "fraud-v7", **overrides: Any) -> dict[str, Any]:
    """A running 50/50 experiment entry in the config document's shape."""
    base: dict[str, Any] = {
        "key": key,
        "version": 2,
        "status": "running",
        "salt": key,
        "hash_version": 1,
        "variants": [
            {"key": "baseline", "weight": 50, "payload": {"model": "fraud-v6"}},
            {"key": "candidate", "weight": 50, "payload": {"model": "fraud-v7"}},
        ],
        "baseline": "baseline",
        "shipped_variant": None,
        "traffic": 1.0,
        "targeting": {},
        "layer": None,
        "layer_range": None,
        "holdout": 0.0,
    }
    base.update(overrides)
    return base


def document(*entries: dict[str, Any], etag: str = '"v1"') -> dict[str, Any]:
    return {"etag": etag, "hash_version": 1, "experiments": {e["key"]: e for e in entries}}


Responder = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class FakeService:
    """Serves ``/v1/config`` with ETags and records every request.

    ``responders[path]`` may return a response for a path (or ``None`` for the
    default behaviour); ``fail`` raises ``httpx.ConnectError`` on every call.
    """

    config: dict[str, Any] = field(default_factory=lambda: document(entry()))
    requests: list[httpx.Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    responders: dict[str, Responder] = field(default_factory=dict)
    fail: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_config(self, config: dict[str, Any]) -> None:
        with self.lock:
            self.config = copy.deepcopy(config)

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            self.times.append(time.monotonic())
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        responder = self.responders.get(request.url.path)
        if responder is not None:
            response = responder(request)
            if response is not None:
                return response
        path = request.url.path
        if path == "/v1/config":
            with self.lock:
                config = self.config
            etag = config.get("etag", '"v1"')
            if request.headers.get("If-None-Match") == etag:
                return httpx.Response(304, headers={"ETag": etag})
            return httpx.Response(200, json=config, headers={"ETag": etag})
        if path == "/v1/events":
            n = len(json.loads(request.content)["events"])
            return httpx.Response(202, json={"accepted": n, "duplicates": 0})
        if path == "/v1/exposures":
            return httpx.Response(
                202, json={"accepted": len(json.loads(request.content)["exposures"])}
            )
        if path.startswith("/v1/models/") and path.endswith("/records"):
            n = len(json.loads(request.content)["records"])
            return httpx.Response(202, json={"accepted": n, "duplicates": 0})
        if path.startswith("/v1/models/") and path.endswith("/labels"):
            n = len(json.loads(request.content)["labels"])
            return httpx.Response(202, json={"matched": n, "unmatched": 0})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def posted(self, path: str) -> list[httpx.Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and r.url.path == path]

    def gets(self, path: str = "/v1/config") -> list[httpx.Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "GET" and r.url.path == path]

    def events(self) -> list[dict[str, Any]]:
        return [e for r in self.posted("/v1/events") for e in json.loads(r.content)["events"]]

    def model_items(self, model: str, kind: str) -> list[dict[str, Any]]:
        """What was posted to ``/v1/models/{model}/{kind}`` (records or labels)."""
        path = f"/v1/models/{model}/{kind}"
        return [x for r in self.posted(path) for x in json.loads(r.content)[kind]]

    def exposures(self) -> list[dict[str, Any]]:
        return [e for r in self.posted("/v1/exposures") for e in json.loads(r.content)["exposures"]]
