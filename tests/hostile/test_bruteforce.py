"""Guessing keys against a live server: 429 + Retry-After past the limit, a warning naming the
address, callers from other addresses unaffected, ``/healthz`` responsive.

Attackers connect from other loopback addresses (127.0.0.2, ...) than the legitimate
callers (127.0.0.1): distinct client addresses for real, without a proxy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT
from tests.hostile.conftest import HealthProbe

BURST = 5
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _from(address: str, url: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, timeout=10, transport=transport)


def _wrong(n: int) -> dict[str, str]:
    return {"Authorization": f"Bearer guess-{n:010d}"}


def _start(env: dict[str, str], log: Path, **settings: str) -> LiveServer:
    extra = {f"SHARPEN_{name.upper()}": value for name, value in settings.items()}
    return LiveServer({**env, **extra}, log=log).start()


@pytest.fixture
def guarded(server_env: dict[str, str], server_log: Path) -> Iterator[LiveServer]:
    server = _start(server_env, server_log, auth_fail_burst=str(BURST), auth_fail_per_min="1")
    yield server
    server.stop()


def _logged(log: Path, needle: str) -> str:
    return wait_for(
        lambda: "\n".join(line for line in log.read_text().splitlines() if needle in line),
        what=f"a log line with {needle!r}",
        timeout_s=10,
    )


def test_wrong_api_keys_from_one_address_are_stopped(guarded: LiveServer, server_log: Path) -> None:
    probe = HealthProbe(guarded.url)
    with _from("127.0.0.2", guarded.url) as attacker, _from("127.0.0.1", guarded.url) as ok:
        with probe:
            statuses: list[int] = []
            while len(probe.latencies_s) < 40 and len(statuses) < 20_000:
                answer = attacker.get("/v1/experiments", headers=_wrong(len(statuses)))
                statuses.append(answer.status_code)
                # A legitimate caller on another address is never refused meanwhile.
                if len(statuses) % 50 == 0:
                    assert ok.get("/v1/experiments", headers=ADMIN).status_code == 200
        assert statuses[:BURST] == [401] * BURST
        assert set(statuses[BURST:]) == {429}, statuses[: BURST + 5]
        refused = attacker.get("/v1/experiments", headers=_wrong(0))
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["error"]["code"] == "rate_limited"
        # Unchecked: from that address even the right key is refused, so a guess tells nothing.
        assert attacker.get("/v1/experiments", headers=ADMIN).status_code == 429
        assert attacker.post("/v1/assign", headers=CLIENT, json={}).status_code == 429
        assert attacker.get("/healthz").status_code == 200  # no key, nothing to refuse
        assert ok.get("/v1/experiments", headers=ADMIN).status_code == 200
    probe.assert_responsive()
    line = _logged(server_log, "failed authentication")
    assert "127.0.0.2" in line and "API key" in line
    text = server_log.read_text()
    assert "guess-" not in text and ADMIN_KEY not in text


def _login(client: httpx.Client, key: str, token: str) -> tuple[httpx.Response, str]:
    answer = client.post("/ui/login", data={"key": key, "csrf_token": token, "next": "/ui/"})
    found = _TOKEN.search(answer.text)
    return answer, found.group(1) if found else ""


def _form_token(client: httpx.Client) -> str:
    found = _TOKEN.search(client.get("/ui/login").text)
    assert found, "no login form"
    return found.group(1)


def test_wrong_keys_in_the_login_form_are_stopped(guarded: LiveServer, server_log: Path) -> None:
    probe = HealthProbe(guarded.url)
    with _from("127.0.0.3", guarded.url) as attacker, _from("127.0.0.1", guarded.url) as ok:
        token = _form_token(attacker)
        statuses: list[int] = []
        with probe:
            while len(probe.latencies_s) < 40 and len(statuses) < 20_000:
                answer, token = _login(attacker, f"guess-{len(statuses):010d}", token)
                statuses.append(answer.status_code)
        assert statuses[:BURST] == [401] * BURST
        assert set(statuses[BURST:]) == {429}, statuses[: BURST + 5]
        answer, _ = _login(attacker, ADMIN_KEY, token)
        assert answer.status_code == 429 and 1 <= int(answer.headers["Retry-After"]) <= 60
        assert "failed authentications" in answer.text
        # The right key from another address still logs in.
        done, _ = _login(ok, ADMIN_KEY, _form_token(ok))
        assert done.status_code == 303 and done.headers["location"] == "/ui/"
        assert ok.get("/ui/").status_code == 200
    probe.assert_responsive()
    line = _logged(server_log, "failed authentication")
    assert "127.0.0.3" in line and "dashboard login" in line
    assert "guess-" not in server_log.read_text()


def test_rotating_addresses_trip_the_overall_limit_not_known_callers(
    server_env: dict[str, str], server_log: Path
) -> None:
    server = _start(
        server_env,
        server_log,
        auth_fail_burst="1000",
        auth_fail_global_burst="20",
        auth_fail_global_per_min="1",
    )
    try:
        with _from("127.0.0.1", server.url) as known:
            assert known.get("/v1/experiments", headers=ADMIN).status_code == 200
            statuses = []
            for i in range(30):  # two guesses from each of 15 addresses
                with _from(f"127.0.1.{i // 2 + 1}", server.url) as attacker:
                    statuses.append(attacker.get("/v1/config", headers=_wrong(i)).status_code)
            assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
            with _from("127.0.2.1", server.url) as newcomer:
                refused = newcomer.get("/v1/config", headers=CLIENT)
                assert refused.status_code == 429 and "overall" in refused.text
            assert known.get("/v1/config", headers=CLIENT).status_code == 200
        assert "only addresses that authenticated before" in _logged(server_log, "all addresses")
    finally:
        server.stop()


def test_forwarded_for_counts_only_from_a_trusted_proxy(guarded: LiveServer) -> None:
    """uvicorn trusts ``X-Forwarded-For`` from ``--forwarded-allow-ips`` (127.0.0.1 here):
    behind that proxy each client has its own limit; anyone else cannot pick an address."""
    with _from("127.0.0.4", guarded.url) as direct:
        statuses = [
            direct.get(
                "/v1/config", headers={**_wrong(i), "X-Forwarded-For": f"198.51.100.{i}"}
            ).status_code
            for i in range(BURST + 3)
        ]
        assert statuses == [401] * BURST + [429] * 3
    with _from("127.0.0.1", guarded.url) as proxy:
        behind = {"X-Forwarded-For": "203.0.113.7"}
        statuses = [
            proxy.get("/v1/config", headers={**_wrong(i), **behind}).status_code
            for i in range(BURST + 1)
        ]
        assert statuses == [401] * BURST + [429]
        other = {**CLIENT, "X-Forwarded-For": "203.0.113.8"}
        assert proxy.get("/v1/config", headers=other).status_code == 200
        assert proxy.get("/v1/config", headers=CLIENT).status_code == 200  # the proxy itself
