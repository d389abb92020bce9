"""Redis Cluster for real: three masters, two experiments on different slots, exact results."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import pytest
import redis
from redis.crc import key_slot

from service.embedded import free_port
from service.store import keys
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT, make_settings, running_app
from tests.ingest._helpers import (
    FAST,
    aggregate,
    assert_same,
    batches,
    make_events,
    make_units,
    observed,
    ok,
    read_cells,
    reference,
    spec,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        print("SKIP: redis-server and redis-cli are needed for the Redis Cluster test")
        pytest.skip("redis-server/redis-cli not installed (Debian package redis-server)")
    ports = _cluster_ports(3)
    processes = []
    try:
        for port in ports:
            data = tmp_path_factory.mktemp(f"cluster-{port}")
            processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(data / "nodes.conf"),
                        "--dir", str(data),
                        "--appendonly", "no",
                        "--save", "",
                        "--logfile", str(data / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in ports:
            wait_for(partial(_ask, port, lambda r: r.ping()), what=f"redis node :{port}")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in ports:
            wait_for(
                partial(_ask, port, lambda r: r.cluster("info")["cluster_state"]),
                until=lambda state: state == "ok",
                what=f"cluster_state ok on :{port}",
                interval_s=0.05,
            )
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _ask(port: int, question: Callable[[redis.Redis], object]) -> object:
    with redis.Redis(host="127.0.0.1", port=port) as node:
        return question(node)


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free and valid too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10_000 > 65_535 or port in ports:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _node_of(slot: int) -> int:
    return 0 if slot <= 5460 else 1 if slot <= 10922 else 2


def _keys_on_different_nodes() -> tuple[str, str]:
    names = [f"cluster-exp-{i}" for i in range(50)]
    first = names[0]
    node = _node_of(key_slot(keys.tag(first).encode()))
    second = next(n for n in names if _node_of(key_slot(keys.tag(n).encode())) != node)
    return first, second


def test_ingestion_and_aggregation_on_redis_cluster(cluster: list[int]) -> None:
    url = f"redis://127.0.0.1:{cluster[0]}"
    settings = make_settings(url, redis_cluster=True, **FAST)
    user_key, request_key = _keys_on_different_nodes()
    docs = {user_key: spec(user_key), request_key: spec(request_key, unit="request")}
    rng = np.random.default_rng(17)
    events = {
        user_key: make_events(rng, user_key, make_units(rng, 300), integers=True),
        request_key: make_events(
            rng, request_key, make_units(rng, 1500, prefix="r"), per_unit=(1, 1), integers=True
        ),
    }
    with running_app(settings) as client:
        for doc in docs.values():
            assert client.post("/v1/experiments", json=doc, headers=ADMIN).status_code == 201
            assert client.post(f"/v1/experiments/{doc['key']}/start", headers=ADMIN).status_code
        # Batches mixing both experiments: one Lua call per experiment, each on its slot.
        # Each batch carries an Idempotency-Key (claimed on one slot, its answer kept per
        # experiment on theirs) and is replayed once: the first answer, nothing recounted.
        mixed = sorted(events[user_key] + events[request_key], key=lambda e: e["timestamp"])
        for i, chunk in enumerate(batches(mixed, 800)):
            headers = {**CLIENT, "Idempotency-Key": f"cluster-{i}"}
            for _ in range(2):
                response = client.post("/v1/events", json={"events": chunk}, headers=headers)
                assert response.status_code == 202, response.text
                assert response.json() == ok(len(chunk))
        again = client.post("/v1/events", json={"events": mixed[:10]}, headers=CLIENT)
        assert again.json() == ok(0, 10)
    asyncio.run(aggregate(settings, [user_key, request_key]))
    for key, doc in docs.items():
        cells = asyncio.run(read_cells(settings, key))
        assert_same(observed(cells), reference(doc, events[key]), exact=True)
    # The two experiments' keys really live on different masters.
    slots = {
        key_slot(keys.units(user_key).encode()),
        key_slot(keys.events_stream(request_key).encode()),
    }
    assert len({_node_of(s) for s in slots}) == 2
