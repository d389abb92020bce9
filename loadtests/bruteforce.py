"""Guessing keys against a live server: how many guesses a second does sharpen check?

One uvicorn worker (as in ``bench_assign``) with its own redis-server. For ``--duration``
seconds, ``--threads`` attackers, each on its own connection from one address, send wrong
keys as fast as answers come back: first as ``Authorization: Bearer`` on an admin route
(from 127.0.0.3), then through the dashboard's login form (from 127.0.0.4: the two share
the per-address limit). Meanwhile a legitimate admin caller on another source address
(127.0.0.2) makes one request every 50 ms.

Printed per attack: attempts/s, how many were *checked* (answered 401: the guess was
compared against the key ring) and how many refused unchecked (429), per second, and what
the legitimate caller saw. The checked-guesses rate is the attacker's real speed.

    .venv/bin/python -m loadtests.bruteforce [--duration 10] [--threads 4]
"""

from __future__ import annotations

import argparse
import collections
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from loadtests.bench_assign import ADMIN_KEY, CLIENT_KEY, Uvicorn
from service.embedded import EmbeddedRedis

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _guess_header(http: httpx.Client, n: int) -> int:
    headers = {"Authorization": f"Bearer wrong-key-{n:08d}"}
    return http.get("/v1/experiments", headers=headers).status_code


def _login_form(http: httpx.Client) -> str:
    page = http.get("/ui/login")
    found = _TOKEN.search(page.text)
    if found is None:
        raise RuntimeError(f"no login form: {page.status_code} {page.text[:200]}")
    return found.group(1)


def _guess_login(http: httpx.Client, n: int) -> int:
    if "csrf" not in http.__dict__:
        http.__dict__["csrf"] = _login_form(http)
    form = {"key": f"wrong-key-{n:08d}", "csrf_token": http.__dict__["csrf"], "next": "/ui/"}
    answer = http.post("/ui/login", data=form)
    found = _TOKEN.search(answer.text)  # each answer renders the form with a fresh token
    http.__dict__["csrf"] = found.group(1) if found else _login_form(http)
    return answer.status_code


def attack(
    url: str,
    guess: Callable[[httpx.Client, int], int],
    threads: int,
    duration: float,
    source: str,
) -> dict[str, object]:
    statuses: collections.Counter[int] = collections.Counter()
    legit: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def attacker(index: int) -> None:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=url, timeout=10, transport=transport) as http:
            n = index * 10_000_000
            while not stop.is_set():
                n += 1
                status = guess(http, n)
                with lock:
                    statuses[status] += 1

    def legitimate() -> None:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=url, timeout=10, transport=transport) as http:
            while not stop.is_set():
                legit[http.get("/v1/experiments", headers=headers).status_code] += 1
                stop.wait(0.05)

    workers = [threading.Thread(target=attacker, args=(i,)) for i in range(threads)]
    workers.append(threading.Thread(target=legitimate))
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    stop.wait(duration)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    total = sum(statuses.values())
    return {
        "attempts_per_s": total / elapsed,
        "checked_per_s": statuses[401] / elapsed,
        "refused_per_s": statuses[429] / elapsed,
        "statuses": dict(statuses),
        "legitimate": dict(legit),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sharpen-bruteforce-") as tmp:
        redis_server = EmbeddedRedis(Path(tmp) / "redis")
        redis_server.start()
        env = {
            "SHARPEN_REDIS_URL": redis_server.url,
            "SHARPEN_ADMIN_KEYS": f"ops={ADMIN_KEY}",
            "SHARPEN_CLIENT_KEYS": f"svc={CLIENT_KEY}",
            "SHARPEN_RUN_WORKER": "false",
        }
        server = Uvicorn("service.app:app_from_env", env, Path(tmp) / "server.log", factory=True)
        try:
            server.start()
            phases = (
                ("API key header", _guess_header, "127.0.0.3"),
                ("/ui/login", _guess_login, "127.0.0.4"),
            )
            for name, guess, source in phases:
                result = attack(server.url, guess, args.threads, args.duration, source)
                print(
                    f"{name:16} {result['attempts_per_s']:8.0f} attempts/s  "
                    f"{result['checked_per_s']:8.1f} checked/s (401)  "
                    f"{result['refused_per_s']:8.0f} refused/s (429)  "
                    f"statuses {result['statuses']}  legitimate caller {result['legitimate']}"
                )
            warnings = [
                line
                for line in (Path(tmp) / "server.log").read_text().splitlines()
                if "WARNING" in line
            ]
            print(f"server warnings: {len(warnings)}")
            for line in warnings[:5]:
                print(f"  {line}")
        finally:
            server.stop()
            redis_server.stop()


if __name__ == "__main__":
    main()
