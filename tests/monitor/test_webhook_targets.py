"""Webhook targets: no credentials or control characters ever; no private, loopback or
link-local address unless allowed, checked on submission and again at every delivery."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.metrics import Metrics
from service.monitor import WebhookSender
from service.webhook_targets import (
    TargetRefused,
    check_url,
    refused_targets,
    resolve_target,
)
from tests._factories import simple_spec
from tests.conftest import ADMIN, AppFactory, make_settings, running_app
from tests.monitor._support import WEBHOOK_SECRET, HookHandler, loopback_receiver

PUBLIC = "93.184.216.34"

ALWAYS_REFUSED = [
    ("https://user:pass@hooks.example/x", "credentials"),
    ("https://token@hooks.example/x", "credentials"),
    ("https://hooks.example/x\nX-Injected: 1", "control characters"),
    ("https://hooks.example/a b", "whitespace"),
    ("https://hooks.example/\x7f", "control characters"),
    ("ftp://hooks.example/x", "http"),
    ("https:///x", "no host"),
    ("http://0x7f000001/", "dotted quad"),
    ("http://2130706433/", "dotted quad"),
    ("http://0177.0.0.1/", "dotted quad"),
    ("http://127.1/", "dotted quad"),
    ("https://hooks.example/" + "x" * 2000, "2000"),
]

PRIVATE = [
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://127.0.0.1:9000/hook", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://192.168.0.10/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "not a public address"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
    ("http://[::ffff:8.8.8.8]/", "IPv4-mapped"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[2002:7f00:1::]/", "6to4"),
]


@pytest.mark.parametrize(("url", "reason"), ALWAYS_REFUSED)
def test_always_refused_even_when_private_addresses_are_allowed(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(("url", "reason"), PRIVATE)
def test_non_public_addresses_are_refused_unless_allowed(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason) as refused:
        check_url(url, allow_private=False)
    assert "SHARPEN_WEBHOOK_ALLOW_PRIVATE" in str(refused.value)
    check_url(url, allow_private=True)


def test_public_urls_pass() -> None:
    for url in (
        f"https://{PUBLIC}/x",
        "https://hooks.example:8443/x?a=1",
        "http://[2606:4700::1]/",
    ):
        check_url(url, allow_private=False)


class Resolver:
    """DNS, the boundary we do not own: answers from a table, in turn per call."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        queue = self.answers.get(host)
        if not queue:
            raise OSError(f"[Errno -2] Name or service not known: {host!r}")
        return queue.pop(0) if len(queue) > 1 else queue[0]


async def test_a_name_is_refused_if_any_of_its_addresses_is_private() -> None:
    resolver = Resolver({"hooks.example": [[PUBLIC, "10.0.0.5"]]})
    with pytest.raises(TargetRefused, match=r"hooks\.example \(10\.0\.0\.5\) is a private"):
        await resolve_target("https://hooks.example/x", allow_private=False, resolver=resolver)
    target = await resolve_target("https://hooks.example/x", allow_private=True, resolver=resolver)
    assert target.addresses == [] and resolver.calls == ["hooks.example"]  # not resolved


async def test_submission_errors_name_the_field() -> None:
    resolver = Resolver({"hooks.example": [[PUBLIC]], "metadata.example": [["169.254.169.254"]]})
    errors = await refused_targets(
        ["https://hooks.example/ok", "http://metadata.example/", "https://nowhere.example/"],
        field="webhooks",
        allow_private=False,
        resolver=resolver,
    )
    assert [e["field"] for e in errors] == ["webhooks.1", "webhooks.2"]
    assert "link-local" in errors[0]["message"]
    assert "does not resolve" in errors[1]["message"]


def _sender(
    transport: httpx.AsyncBaseTransport | None, resolver: Resolver | None, **kw: object
) -> tuple[WebhookSender, list[float]]:
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    options: dict[str, object] = {
        "secret": WEBHOOK_SECRET,
        "metrics": Metrics(),
        "transport": transport,
        "sleep": sleep,
        "max_attempts": 3,
    }
    if resolver is not None:
        options["resolver"] = resolver
    options.update(kw)
    return WebhookSender(**options), sleeps  # type: ignore[arg-type]


async def test_delivery_connects_to_the_checked_address_with_the_hosts_name() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    resolver = Resolver({"hooks.example": [[PUBLIC]]})
    sender, _ = _sender(httpx.MockTransport(answer), resolver)
    await sender.start()
    sender.send("experiment.shipped", "fraud-v7", {}, ["https://hooks.example:8443/in?x=1"])
    await sender.drain()
    await sender.stop()
    [request] = seen
    assert (request.url.host, request.url.port, request.url.path) == (PUBLIC, 8443, "/in")
    assert request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.example:8443"
    assert request.extensions["sni_hostname"] == "hooks.example"  # TLS checks the name


async def test_dns_rebinding_is_caught_at_delivery(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[httpx.Request] = []
    # Public when the spec is submitted, loopback when the webhook is sent.
    resolver = Resolver({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    url = "http://rebind.example/hook"
    assert (
        await refused_targets([url], field="webhooks", allow_private=False, resolver=resolver) == []
    )

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    metrics = Metrics()
    sender, _ = _sender(httpx.MockTransport(answer), resolver, metrics=metrics)
    await sender.start()
    with caplog.at_level(logging.ERROR, logger="sharpen.webhooks"):
        sender.send("experiment.rolled_back", "fraud-v7", {}, [url])
        await sender.drain()
    await sender.stop()
    assert seen == []
    assert "127.0.0.1) is a loopback address" in caplog.text
    assert metrics.sample("sharpen_webhook_deliveries_total", {"outcome": "failed"}) == 1


@pytest.fixture
def loopback() -> Iterator[tuple[str, type[HookHandler]]]:
    with loopback_receiver() as (port, handler):
        yield f"http://localhost:{port}/hook", handler  # a name: the system resolver's


async def test_a_real_loopback_receiver_is_reached_only_when_allowed(
    loopback: tuple[str, type[HookHandler]],
) -> None:
    url, handler = loopback
    refused, _ = _sender(None, None)
    await refused.start()
    refused.send("experiment.shipped", "fraud-v7", {}, [url])
    await refused.drain()
    await refused.stop()
    assert handler.received == []
    allowed, _ = _sender(None, None, allow_private=True)
    await allowed.start()
    allowed.send("experiment.shipped", "fraud-v7", {}, [url])
    await allowed.drain()
    await allowed.stop()
    assert len(handler.received) == 1


async def test_an_http_date_retry_after_is_honoured_with_jitter() -> None:
    answers = iter([30.0, None])

    def answer(request: httpx.Request) -> httpx.Response:
        wait = next(answers)
        if wait is None:
            return httpx.Response(204)
        when = email.utils.formatdate(time.time() + wait, usegmt=True)
        return httpx.Response(503, headers={"Retry-After": when})

    sender, sleeps = _sender(httpx.MockTransport(answer), None, allow_private=True)
    await sender.start()
    sender.send("experiment.shipped", "fraud-v7", {}, ["http://hooks.test/a"])
    await sender.drain()
    await sender.stop()
    [delay] = sleeps
    assert 28.0 <= delay <= 30.0 * 1.25  # the date, not the 0.5 s backoff; jittered upwards


@pytest.fixture
def strict_api(make_api: AppFactory) -> TestClient:
    return make_api(webhook_allow_private=False)


def test_the_api_refuses_bad_targets_naming_the_field(strict_api: TestClient) -> None:
    bad = strict_api.post(
        "/v1/experiments",
        json=simple_spec(webhooks=[f"https://{PUBLIC}/ok", "http://169.254.169.254/x"]),
        headers=ADMIN,
    )
    assert bad.status_code == 422, bad.text
    [detail] = bad.json()["error"]["details"]
    assert detail["field"] == "webhooks.1" and "link-local" in detail["message"]
    named = strict_api.post(
        "/v1/experiments", json=simple_spec(webhooks=["http://localhost:9/x"]), headers=ADMIN
    )
    assert named.status_code == 422
    assert "localhost (127.0.0.1) is a loopback address" in named.text
    secret = strict_api.post(
        "/v1/experiments",
        json=simple_spec(webhooks=["https://u:hunter2@hooks.example/x"]),
        headers=ADMIN,
    )
    assert secret.status_code == 422
    assert [d["field"] for d in secret.json()["error"]["details"]] == ["webhooks.0"]
    ok = strict_api.post(
        "/v1/experiments", json=simple_spec(webhooks=[f"https://{PUBLIC}/ok"]), headers=ADMIN
    )
    assert ok.status_code == 201, ok.text


def test_allowing_private_targets_lets_a_local_receiver_in(redis_url: str) -> None:
    settings = make_settings(redis_url, webhook_allow_private=True)
    with running_app(settings) as api:
        spec = simple_spec(webhooks=["http://127.0.0.1:9000/hook"])
        assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
        spec = simple_spec("exp-b", webhooks=["https://u:p@127.0.0.1/hook"])
        assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 422


def test_settings_refuse_a_private_literal_naming_the_field(redis_url: str) -> None:
    with pytest.raises(ValidationError, match=r"webhook_urls[\s\S]*URL 2: 169\.254\.169\.254"):
        make_settings(
            redis_url,
            webhook_urls=["https://hooks.example/a", "http://169.254.169.254/"],
            webhook_secret="s" * 16,
        )
    allowed = make_settings(
        redis_url,
        webhook_urls=["http://127.0.0.1:9/a"],
        webhook_secret="s" * 16,
        webhook_allow_private=True,
    )
    assert allowed.webhook_urls == ["http://127.0.0.1:9/a"]
