"""Schemathesis against the live OpenAPI document: no 5xx, responses match their schemas.

Every operation is fuzzed with valid keys (admin or client, found by probing: an admin key
that gets 403 means the route wants a client key), positive and negative data, and path
keys that sometimes name real experiments and models so the deep paths run too. Bounded
and derandomized: the same examples every run.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from service.app import create_app
from service.embedded import EmbeddedRedis
from service.settings import Settings
from service.spec.examples import FRAUD_V7
from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY

# CI-sized; SHARPEN_FUZZ_EXAMPLES=200 for a deeper (still seeded) run by hand.
MAX_EXAMPLES = int(os.environ.get("SHARPEN_FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
KNOWN = {"key": ["fraud-v7", "draft-exp"], "name": ["fraud-model"]}


def _labels() -> list[tuple[str, str]]:
    # The same code as the live server builds the schema; no Redis needed for it.
    offline = create_app(Settings(redis_url="redis://127.0.0.1:1", dev=True)).openapi()
    return [
        (method.upper(), path)
        for path, operations in offline["paths"].items()
        for method in operations
    ]


@dataclass
class Fuzz:
    url: str
    schema: Any
    scopes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


def _seed(url: str) -> None:
    fraud = copy.deepcopy(FRAUD_V7)
    assert httpx.post(f"{url}/v1/experiments", json=fraud, headers=ADMIN).status_code == 201
    assert httpx.post(f"{url}/v1/experiments/fraud-v7/start", headers=ADMIN).status_code == 200
    draft = {**copy.deepcopy(FRAUD_V7), "key": "draft-exp"}
    assert httpx.post(f"{url}/v1/experiments", json=draft, headers=ADMIN).status_code == 201
    records = {
        "records": [
            {
                "id": f"r{i}",
                "timestamp": 1_700_000_000 + i,
                "prediction": i % 2,
                "score": (i % 10) / 10,
                "label": (i // 2) % 2,
                "features": {"country": "US" if i % 3 else "CA"},
            }
            for i in range(50)
        ]
    }
    httpx.post(f"{url}/v1/models/fraud-model/records", json=records, headers=CLIENT)


@pytest.fixture(scope="module")
def fuzz(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    import redis

    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    env = {
        "SHARPEN_REDIS_URL": redis_server.url,
        "SHARPEN_ADMIN_KEYS": f"tester={ADMIN_KEY}",
        "SHARPEN_CLIENT_KEYS": f"svc={CLIENT_KEY}",
        "SHARPEN_RUN_WORKER": "false",
        "SHARPEN_ADMIN_RATE_LIMIT_PER_S": "100000",
        "SHARPEN_ADMIN_RATE_LIMIT_BURST": "100000",
        # An admitted config stream never ends: fuzz its refusals (429), not a hang.
        "SHARPEN_CONFIG_STREAM_MAX_PER_KEY": "0",
    }
    log = Path(tmp_path_factory.mktemp("fuzz")) / "server.log"
    server = LiveServer(env, log=log).start()
    try:
        _seed(server.url)
        document = httpx.get(f"{server.url}/openapi.json").json()
        schema = schemathesis.openapi.from_dict(document)
        yield Fuzz(url=server.url, schema=schema)
    finally:
        server.stop()


def _headers(fuzz: Fuzz, method: str, path: str) -> dict[str, str]:
    """Admin headers unless the route answers an admin key with 403 (then client)."""
    label = (method, path)
    if label not in fuzz.scopes:
        probe_path = path.replace("{key}", "fraud-v7").replace("{name}", "fraud-model")
        status = httpx.request(method, fuzz.url + probe_path, headers=ADMIN).status_code
        fuzz.scopes[label] = CLIENT if status == 403 else ADMIN
    return fuzz.scopes[label]


def _known(case: Any, data: st.DataObject) -> Any:
    for name, values in KNOWN.items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = data.draw(st.sampled_from(values))
    return case


@pytest.mark.parametrize(("method", "path"), _labels(), ids=lambda v: str(v))
def test_operation_has_no_server_error_and_matches_its_schema(
    fuzz: Fuzz, method: str, path: str
) -> None:
    operation = fuzz.schema[path][method]
    headers = _headers(fuzz, method, path)
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        # The documented examples, so valid bodies reach the deep paths too.
        *fuzz.schema.get_strategies_from_examples(operation),
    )
    failures: list[str] = []
    calls: list[int] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, known=st.booleans(), data=st.data())
    def run(case: Any, known: bool, data: st.DataObject) -> None:
        if known:
            case = _known(case, data)
        response = case.call(base_url=fuzz.url, headers=headers, timeout=30)
        calls.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as exc:  # the check's report, kept to list them all at the end
            failures.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{str(exc)[:600]}\n  body: {str(case.body)[:300]}"
            )

    run()
    assert calls, f"no request made for {method} {path}"
    assert not failures, "\n".join(failures[:5])
